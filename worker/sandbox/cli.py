"""The `sandbox` and `generate-dataset` subcommands; the main CLI adds them with `register(subparsers)`."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from worker.config import Settings
from worker.sandbox.generate import DEFAULT_REFERENCE_DATE


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so `generate-dataset` and --help do not load aiohttp.
    from worker.sandbox.server import run

    print(f"Nmbrs sandbox on http://{args.host}:{args.port}/soap/v3/ serving {args.data}", flush=True)
    run(
        args.data,
        args.port,
        args.host,
        username=settings.nmbrs_username,
        token=settings.nmbrs_token.get_secret_value(),
        domain=settings.nmbrs_domain,
    )
    return 0


def _generate(args: argparse.Namespace, _settings: Settings) -> int:
    from worker.sandbox.dataset import save_dataset
    from worker.sandbox.generate import generate

    dataset = generate(args.companies, args.employees, args.seed, args.as_of, args.two_cao_companies)
    save_dataset(dataset, args.out)
    print(f"{len(dataset.companies)} companies, {len(dataset.employees)} employees written to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sandbox` and `generate-dataset` to the main CLI's subparsers."""
    sandbox = subparsers.add_parser(
        "sandbox",
        help="run the local Nmbrs SOAP sandbox",
        description="Serve a dataset as Nmbrs SOAP v3; valid credentials are NMBRS_USERNAME/TOKEN/DOMAIN.",
    )
    sandbox.add_argument("--data", type=Path, required=True, help="dataset JSON file")
    sandbox.add_argument("--port", type=int, required=True, help="TCP port")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    sandbox.set_defaults(func=_sandbox)

    generate = subparsers.add_parser(
        "generate-dataset",
        help="write a deterministic sandbox dataset",
        description="Generate a realistic Dutch dataset; the same arguments always give the same file.",
    )
    generate.add_argument("--companies", type=int, required=True)
    generate.add_argument("--employees", type=int, required=True)
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=DEFAULT_REFERENCE_DATE,
        help=f"the dataset's today (default {DEFAULT_REFERENCE_DATE}: fixed, so files are reproducible)",
    )
    generate.add_argument(
        "--two-cao-companies", type=int, default=0, help="how many companies get two CAOs (default 0)"
    )
    generate.set_defaults(func=_generate)

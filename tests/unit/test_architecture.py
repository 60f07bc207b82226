"""The layers hold: a pure domain, use cases that know no entrypoint, each I/O library in its own adapter.

worker/domain       pure rules and models: imports nothing of the worker but the domain, and no I/O library
worker/service      use cases: the domain and the adapters, never an entrypoint or the sandbox
worker/adapters     PostgreSQL, Kafka, Nmbrs: the domain (and config), never a use case or an entrypoint
worker/entrypoints  CLIs, the faust app (the composition root) and the consumer shell
worker/sandbox      the Nmbrs sandbox: a stand-in for Nmbrs that shares nothing with the worker but records
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[2] / "worker"
MODULES = sorted(WORKER.rglob("*.py"))

# Where each I/O library may be imported (a path prefix inside worker/).
LIBRARY_HOMES = {
    "asyncpg": ("adapters/",),
    "aiokafka": ("adapters/",),
    "zeep": ("adapters/nmbrs/",),
    "httpx": ("adapters/nmbrs/",),
    "faust": ("entrypoints/worker_app.py",),
    "mode": ("entrypoints/worker_app.py",),
    "aiohttp": ("entrypoints/", "sandbox/", "adapters/nmbrs/"),  # the Nmbrs client posts through it
    "lxml": ("adapters/nmbrs/", "sandbox/"),
    "argon2": ("adapters/web_accounts.py",),
    "jinja2": ("entrypoints/web/",),
    "prometheus_client": ("adapters/metrics.py",),
}
# Which worker packages each layer may import.
LAYER_MAY_IMPORT = {
    "domain": {"domain"},
    "service": {"domain", "adapters", "config", "service"},
    "adapters": {"domain", "adapters", "config", "contracts"},
    "sandbox": {"domain", "sandbox", "config", "adapters.nmbrs"},  # the WSDL files ship with the client
    "entrypoints": {"domain", "adapters", "config", "service", "entrypoints", "sandbox", "contracts", "migrations"},
}


def imports_of(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from worker.service import decisions` imports the module worker.service.decisions
            found.update(f"{node.module}.{alias.name}" for alias in node.names if node.module.startswith("worker"))
    return found


def relative(module: Path) -> str:
    return module.relative_to(WORKER).as_posix()


def layer_of(module: Path) -> str | None:
    parts = module.relative_to(WORKER).parts
    return parts[0] if len(parts) > 1 and parts[0] in LAYER_MAY_IMPORT else None


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("module", MODULES, ids=relative)
def test_io_libraries_are_imported_only_in_their_adapter(module: Path) -> None:
    path = relative(module)
    misplaced = {
        name
        for name in imports_of(module)
        for library, homes in LIBRARY_HOMES.items()
        if within(name, library) and not path.startswith(homes)
    }
    assert not misplaced, (
        f"{path} imports {sorted(misplaced)}, which belong in {[LIBRARY_HOMES[n.split('.')[0]] for n in misplaced]}"
    )


@pytest.mark.parametrize("module", [m for m in MODULES if layer_of(m)], ids=relative)
def test_each_layer_imports_only_the_layers_below_it(module: Path) -> None:
    allowed = LAYER_MAY_IMPORT[layer_of(module) or ""]
    offending = {
        name
        for name in imports_of(module)
        if within(name, "worker")
        and name != "worker"
        and not any(within(name, f"worker.{package}") for package in allowed)
    }
    assert not offending, f"{relative(module)} ({layer_of(module)}) imports {sorted(offending)}"


def test_the_domain_imports_no_io_at_all() -> None:
    io = {"socket", "asyncio", "requests", "urllib.request", "subprocess"}
    for module in (WORKER / "domain").rglob("*.py"):
        assert not {name for name in imports_of(module) for lib in io if within(name, lib)}, relative(module)


def test_every_layer_is_present() -> None:
    assert {layer_of(m) for m in MODULES} >= set(LAYER_MAY_IMPORT)

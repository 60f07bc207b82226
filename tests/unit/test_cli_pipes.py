"""Every nmbrs-sync command leaves quietly when its reader has gone (`nmbrs-sync pending | head`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def quiet_env() -> dict[str, str]:
    # As a user's shell runs it: a piped stdout is block-buffered, so output can wait for the exit's flush.
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def run_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with a stdout whose reader is gone before anything is written: every write meets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "worker.entrypoints.cli", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=quiet_env(),
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [
        ("config",),  # a little output, still buffered when the command returns
        ("--help",),  # argparse prints and exits on its own
        ("web", "--help"),
    ],
)
def test_a_command_whose_reader_is_gone_exits_quietly(argv: tuple[str, ...]) -> None:
    result = run_into_closed_pipe(*argv)
    assert (result.returncode, result.stderr.decode()) == (0, "")


def test_a_command_printing_many_lines_into_head_exits_quietly() -> None:
    # Many lines: the first ones reach head, which exits; the rest meets a closed pipe in the command or at its end.
    script = (
        "import sys; from worker.entrypoints import cli; "
        "cli.cmd_config = lambda args, settings: print('\\n'.join(map(str, range(200_000)))) or 0; "
        "sys.exit(cli.main(['config']))"
    )
    result = subprocess.run(
        ["bash", "-c", f'set -o pipefail; {sys.executable} -c "{script}" | head -1'],
        capture_output=True,
        cwd=ROOT,
        env=quiet_env(),
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"0\n", b"")

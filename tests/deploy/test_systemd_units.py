"""The systemd units for a plain VM: systemd itself verifies them (systemd-analyze verify) and scores their
hardening offline (systemd-analyze security), and every setting, credential and command they name exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import REPO
from worker.config import Settings
from worker.entrypoints.cli import build_parser

UNITS = REPO / "deploy" / "systemd"
SERVICES = ("nmbrs-sync-worker.service", "nmbrs-sync-web.service")
INSTALLED_CLI = "/opt/nmbrs-sync/bin/nmbrs-sync"
# systemd's own scale: 0 (locked down) .. 10 (unprotected); below 3 it calls a service "OK".
WORST_EXPOSURE = 2.5


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: ./dev test installs Debian's systemd package")
    return found


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """The units as installed, but starting this checkout's CLI (verify wants an executable that exists)."""
    shutil.copytree(UNITS, tmp_path, dirs_exist_ok=True)
    for service in SERVICES:
        unit = tmp_path / service
        unit.write_text(unit.read_text().replace(INSTALLED_CLI, str(Path(sys.executable).with_name("nmbrs-sync"))))
    return tmp_path


def setting_names() -> set[str]:
    names = {name.upper() for name in Settings.model_fields}
    return names | {
        f"TOPICS__{name.upper()}" for name in Settings.model_fields["topics"].default_factory().model_dump()
    }  # type: ignore[misc]


def lines(name: str) -> list[str]:
    paths = [UNITS / name, UNITS / "nmbrs-sync-.service.d" / "10-common.conf"]
    return [line.strip() for path in paths for line in path.read_text().splitlines()]


def test_systemd_verifies_both_units_with_their_shared_drop_in(installed: Path) -> None:
    run = subprocess.run(
        [analyze(), "verify", "--man=no", *(str(installed / s) for s in SERVICES)], capture_output=True, text=True
    )
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_each_unit_is_locked_down_by_systemds_own_measure(installed: Path, service: str) -> None:
    run = subprocess.run(
        [analyze(), "security", "--offline=yes", str(installed / service)], capture_output=True, text=True
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", run.stdout)
    assert found, run.stdout + run.stderr
    assert float(found[1]) <= WORST_EXPOSURE, run.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_credential_and_command_a_unit_names_exists(service: str) -> None:
    known = setting_names()
    unit = lines(service)
    named = [line.removeprefix("Environment=").split("=", 1)[0] for line in unit if line.startswith("Environment=")]
    assert named and set(named) - {"TMPDIR"} <= known, set(named) - known  # TMPDIR is Python's own
    credentials = {line.split("=", 1)[1].split(":", 1)[0] for line in unit if line.startswith("LoadCredential=")}
    used = {match for line in unit if line.startswith("Environment=") for match in re.findall(r"%d/([\w-]+)", line)}
    assert credentials == used, (credentials, used)  # each credential handed over is read, and none is missing
    (command,) = [line.removeprefix("ExecStart=") for line in unit if line.startswith("ExecStart=")]
    program, *arguments = command.split()
    assert program == INSTALLED_CLI
    build_parser().parse_args(arguments)  # exits (fails the test) on an unknown subcommand


def test_the_example_environment_file_names_real_settings_and_no_secret() -> None:
    pairs = [
        line.split("=", 1)
        for line in (UNITS / "nmbrs-sync.env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {name for name, _ in pairs}
    assert names <= setting_names(), names - setting_names()
    secrets = {"NMBRS_TOKEN", "NMBRS_BSN_HASH_KEY", "DATABASE_PASSWORD", "KAFKA_SASL_PASSWORD"}
    assert not names & secrets
    assert urlsplit(dict(pairs)["DATABASE_URL"]).password is None  # the password is a credential file


@pytest.mark.parametrize("service", SERVICES)
def test_each_unit_starts_with_the_example_settings_and_its_credentials(service: str, tmp_path: Path) -> None:
    # What systemd would hand the process: the env file, the units' Environment= with %d resolved to a
    # directory holding every credential the unit loads. Loading the settings is what fails a start.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    unit = lines(service)
    for line in unit:
        if line.startswith("LoadCredential="):
            name = line.split("=", 1)[1].split(":", 1)[0]
            (credentials / name).write_text("k" * 32 if name == "nmbrs-bsn-hash-key" else f"{name}-value\n")
    env = {
        name: value
        for name, value in (
            line.split("=", 1)
            for line in (UNITS / "nmbrs-sync.env.example").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
    }
    for line in unit:
        if line.startswith("Environment="):
            name, value = line.removeprefix("Environment=").split("=", 1)
            env[name] = value.replace("%d", str(credentials)).replace("%S/%N", str(tmp_path / "state"))
    child = {k: v for k, v in os.environ.items() if k.upper() not in setting_names()} | env
    run = subprocess.run(
        [sys.executable, "-c", "from worker.config import load_settings; load_settings(_env_file=None)"],
        env=child,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr

"""The processes of a chaos run: its own PostgreSQL cluster, Kafka broker, Nmbrs sandbox and workers.

Nothing here touches the shared dev stack (other people run tests on it while this suite kills its database
and broker): every process gets free ports and a fresh directory under /var/tmp/nmbrs-sync-chaos/<random>/,
and is started and stopped by this module only, by its own pid.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import ClassVar

from worker.adapters.kafka import wait_until_ready
from worker.config import Settings

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("nmbrs-sync")
KAFKA_LIBS = REPO / ".stack" / "kafka" / "libs"
CHAOS_ROOT = Path("/var/tmp/nmbrs-sync-chaos")
AS_ROOT = os.geteuid() == 0
# Variables of the parent's environment that would point a child at another stack (./dev exports the shared one).
_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def child_env(**values: str) -> dict[str, str]:
    """The parent's environment without any nmbrs-sync setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k not in _SETTING_NAMES and not k.startswith("TOPICS__")}
    env.update(values)
    return env


class Child:
    """A long-running process this suite started, logging to a file; `expected_exit` is set before we stop it,
    so an exit without it is the process's own doing."""

    running: ClassVar[set[Child]] = set()  # every child not yet reaped, for the last-resort cleanup

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> None:
        self.name, self.argv, self.log, self.env, self.cwd = name, argv, log, env, cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.expected_exit = False

    def start(self) -> None:
        self.expected_exit = False
        with self.log.open("ab") as out:
            out.write(f"--- {self.name} started at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            # A session of its own: a Ctrl-C in the terminal reaches only the harness, which stops us in order.
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
            )
        Child.running.add(self)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> int | None:
        """The exit code once the process ended (None while it runs)."""
        code = None if self.process is None else self.process.poll()
        if code is not None:
            Child.running.discard(self)
        return code

    def kill(self) -> None:
        """kill -9, as a crash would end it."""
        self.expected_exit = True
        if self.process is not None and self.exited() is None:
            self.process.kill()
            self.process.wait()
        Child.running.discard(self)

    async def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after `timeout_s`."""
        self.expected_exit = True
        if self.process is None or self.exited() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def tail(self, lines: int = 3) -> list[str]:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return [line[:300] for line in text if line.strip()][-lines:]

    @classmethod
    def kill_all(cls) -> None:
        """Last resort (a failed or interrupted run): kill -9 every child still running."""
        for child in list(cls.running):
            child.kill()


async def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | str = "/",
    timeout_s: float = 120.0,
    check: bool = True,
) -> tuple[int, str]:
    """Run a short command to its end; its output is returned (and raised with, when it fails and `check`)."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        async with asyncio.timeout(timeout_s):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({process.returncode}):\n{text[-3000:]}")
    return process.returncode or 0, text


def _pg_bin() -> Path:
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (directory / "pg_ctl").exists():
            return directory
    raise RuntimeError("PostgreSQL server binaries are missing (./dev chaos installs them)")


class Postgres:
    """A cluster of our own (fsync off: only a machine crash could lose data, and this one is thrown away)."""

    def __init__(self, home: Path) -> None:
        self.home = home / "postgres"
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.port = free_port()
        self.bin = _pg_bin()
        self.pid: int | None = None

    def _as_postgres(self, *argv: str | Path) -> list[str]:
        # PostgreSQL refuses to run as root; deploy/local/stack.sh does the same.
        return (["runuser", "-u", "postgres", "--"] if AS_ROOT else []) + [str(a) for a in argv]

    def url(self, database: str, user: str = "nmbrs_sync") -> str:
        return f"postgresql://{user}:{user}@127.0.0.1:{self.port}/{database}"

    async def create(self) -> None:
        self.home.mkdir(parents=True)
        if AS_ROOT:
            os.chown(self.home, *_postgres_ids())
        await run(
            self._as_postgres(
                self.bin / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"
            )
        )
        await self.start()
        psql = [
            str(self.bin / "psql"),
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
        ]
        await run([*psql, "CREATE ROLE nmbrs_sync LOGIN PASSWORD 'nmbrs_sync' CREATEDB"])

    async def start(self, timeout_s: float = 60.0) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.home} -c fsync=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        deadline = time.monotonic() + timeout_s
        while True:
            code, output = await run(
                self._as_postgres(
                    self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options, "start"
                ),
                check=False,
            )
            if code == 0:
                break
            # After a kill -9 the old backends hold the shared memory until they noticed: try again shortly.
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{output[-2000:]}")
            await asyncio.sleep(1.0)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """kill -9 of the postmaster (its backends end themselves when they notice)."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self.pid = None

    async def stop(self) -> None:
        if self.pid is None:
            return
        await run(self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"), check=False)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Kafka:
    """A single-node KRaft broker of our own, configured like the dev stack's (deploy/local/kafka/server.properties)."""

    def __init__(self, home: Path, logs: Path) -> None:
        self.dir = home / "kafka"
        self.port, self.controller_port = free_port(), free_port()
        properties = self.dir / "server.properties"
        argv = [
            "java",
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            f"{KAFKA_LIBS}/*",
            "kafka.Kafka",
            str(properties),
        ]
        self.child = Child("kafka", argv, logs / "kafka.log", child_env(), self.dir)
        self.properties = properties

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def create(self) -> None:
        if not any(KAFKA_LIBS.glob("kafka_*.jar")):
            raise RuntimeError(f"no Kafka jars in {KAFKA_LIBS} (./dev chaos collects them)")
        self.dir.mkdir(parents=True)
        template = (REPO / "deploy" / "local" / "kafka" / "server.properties").read_text()
        self.properties.write_text(
            template.replace("@DATA@", str(self.dir / "data"))
            .replace("@PORT@", str(self.port))
            .replace("@CPORT@", str(self.controller_port))
        )
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        await run(
            [
                "java",
                "-cp",
                f"{KAFKA_LIBS}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
            ],
            cwd=self.dir,
        )
        await self.start()

    async def start(self) -> None:
        self.child.start()
        await wait_until_ready(Settings(kafka_bootstrap_servers=self.bootstrap, _env_file=None), 120)

    def kill(self) -> None:
        self.child.kill()

    async def stop(self) -> None:
        self.child.kill()  # its data is thrown away: no need for a controlled shutdown


class Sandbox:
    """The Nmbrs sandbox (`nmbrs-sync sandbox`) serving the run's dataset file."""

    def __init__(self, data: Path, home: Path, logs: Path) -> None:
        self.port = free_port()
        argv = [str(CLI), "sandbox", "--data", str(data), "--port", str(self.port)]
        self.child = Child("sandbox", argv, logs / "sandbox.log", child_env(), home)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.child.start()
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if self.child.exited() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start: {self.child.tail(10)}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        await self.child.stop(10)

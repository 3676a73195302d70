"""A real PostgreSQL for tests: `initdb` + `pg_ctl` on a temporary directory, no service.

Debian keeps the server programs off PATH, in `/usr/lib/postgresql/<version>/bin`; the
newest version there is used. PostgreSQL refuses to run as root, and CI runs as root, so the
server then runs as the `postgres` system user (`runuser`) in a directory it owns, under
/tmp (pytest's own temporary directories are private to root). It listens on a free
loopback port with its socket in that directory, and trusts loopback connections.

For speed, and only because the data is thrown away: fsync and full page writes are off.
Synchronous commit stays on: a test crashes the server (`restart("immediate")`), and with it
off a commit already acknowledged to a gateway could vanish; with fsync off, a commit is
lost only if the machine itself goes down, which no test does.

Without PostgreSQL the tests that need it skip with a reason, except in CI, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.mqtt_broker import free_port

READY_S = 30.0
_LIB = Path("/usr/lib/postgresql")


def server_bin() -> Path | None:
    """The bin directory of the newest PostgreSQL server installed (Debian's layout)."""
    versions = sorted(
        (int(p.name), p / "bin")
        for p in (_LIB.iterdir() if _LIB.is_dir() else [])
        if re.fullmatch(r"\d+", p.name) and (p / "bin" / "initdb").exists()
    )
    return versions[-1][1] if versions else None


def need_postgres() -> Path:
    found = server_bin()
    if found is None:
        message = "PostgreSQL server not installed (make test installs Debian postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class PostgresServer:
    def __init__(self, *, durable: bool = False) -> None:
        """`durable`: PostgreSQL's own defaults (fsync on), for bench/study_ingest.py."""
        self.bin = need_postgres()
        self.dir = Path(tempfile.mkdtemp(prefix="acudevice-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.dir.chmod(0o755)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "max_connections": "60",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
        }
        if not durable:
            settings |= {"fsync": "off", "full_page_writes": "off"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self._databases = 0

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=READY_S * 2,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "start")
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError(f"PostgreSQL did not listen on {self.port} within {READY_S} s")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        """Stop (immediate: like a crash, no clean shutdown) and start again."""
        self.stop(mode)
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, database: str) -> list[str]:
        return [
            "psql",
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
        ]

    def new_database(self) -> str:
        """A fresh, empty database's URL (each test its own)."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        done = subprocess.run(
            [*self.psql("postgres"), "-c", f"CREATE DATABASE {name}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE failed: {done.stderr}")
        return self.url(name)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

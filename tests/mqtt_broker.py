"""A real Mosquitto for tests: config in a temp dir, a free loopback port, no daemon.

`mosquitto_pub` and `mosquitto_sub` (clients we did not write) talk to it from the tests.
Without Mosquitto the MQTT tests skip with a reason, except in CI, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_S = 10.0


def need_mosquitto() -> None:
    missing = [
        t
        for t in ("mosquitto", "mosquitto_pub", "mosquitto_sub", "mosquitto_passwd")
        if shutil.which(t) is None
    ]
    if missing:
        message = f"{', '.join(missing)} not installed (make test installs Debian mosquitto, mosquitto-clients)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def make_certificates(directory: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl; the CA's path."""
    if shutil.which("openssl") is None:
        message = "openssl not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )
    return directory / "ca.crt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: bool = False,
    ) -> None:
        need_mosquitto()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = users or {}
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            "set_tcp_nodelay true",  # else small messages can wait ~40 ms on a delayed ACK
            "persistence false",
            "set_tcp_nodelay true",  # small messages must not wait ~40 ms for a delayed ack
            "log_dest stderr",
            "log_type error",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else 2.x drops privileges and cannot read a 0600 passwd
        if users is None:
            lines.append("allow_anonymous true")
        else:
            passwd = self.dir / "passwd"
            for i, (user, password) in enumerate(users.items()):
                flags = ["-c"] if i == 0 else []
                subprocess.run(
                    ["mosquitto_passwd", *flags, "-b", str(passwd), user, password],
                    check=True,
                    capture_output=True,
                )
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        if acl is not None:
            (self.dir / "acl").write_text(acl)
            (self.dir / "acl").chmod(0o600)
            lines.append(f"acl_file {self.dir / 'acl'}")
        self.ca: Path | None = None
        if tls:
            self.ca = make_certificates(self.dir)
            lines += [f"cafile {self.ca}", f"certfile {self.dir / 'server.crt'}"]
            lines.append(f"keyfile {self.dir / 'server.key'}")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.ca else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "log").open("ab"),
        )
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited {self.proc.returncode}: {(self.dir / 'log').read_text()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {READY_S} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def args(self, user: str | None) -> list[str]:
        auth = ["-u", user, "-P", self.users[user]] if user else []
        tls = ["--cafile", str(self.ca)] if self.ca else []
        return ["-h", "127.0.0.1", "-p", str(self.port), *auth, *tls]

    async def pub(
        self, topic: str, payload: str | bytes, *, retain: bool = False, user: str | None = None
    ) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        flags = (["-r"] if retain else []) + (["-s"] if data else ["-n"])
        proc = await asyncio.create_subprocess_exec(
            "mosquitto_pub",
            *self.args(user),
            "-q",
            "1",
            "-t",
            topic,
            *flags,
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate(data)
        assert proc.returncode == 0, err.decode()

    async def retained(self, pattern: str, *, user: str | None = None) -> dict[str, str]:
        """Every retained message under `pattern` right now (via mosquitto_sub --retained-only)."""
        proc = await asyncio.create_subprocess_exec(
            "mosquitto_sub",
            *self.args(user),
            "-t",
            pattern,
            "--retained-only",
            "-W",
            "1",
            "-F",
            "%t\t%p",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        found = {}
        for line in out.decode().splitlines():
            topic, _, payload = line.partition("\t")
            found[topic] = payload
        return found


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: str
    retained: bool
    at: float = 0.0
    """When the watcher read it (time.time()), for delays measured end to end."""


class Watcher:
    """`mosquitto_sub` in the background: everything under a pattern, waited on with deadlines."""

    def __init__(self, broker: Broker, pattern: str = "#", user: str | None = None) -> None:
        self.broker, self.pattern, self.user = broker, pattern, user
        self.seen: list[Seen] = []
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        self._proc = await asyncio.create_subprocess_exec(
            "mosquitto_sub",
            *self.broker.args(self.user),
            "-t",
            self.pattern,
            "-q",
            "1",
            "-F",
            "MSG\t%r\t%t\t%p",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.create_task(self._read())
        # Subscribed once a probe of our own comes back (mosquitto_sub has no ready signal).
        probe = self.pattern.rstrip("#").rstrip("/") + "/_watcher-probe"
        try:
            async with asyncio.timeout(10):
                while not any(s.topic == probe for s in self.seen):
                    await self.broker.pub(probe, "probe", user=self.user)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self._changed.wait()
                    self._changed.clear()
        except BaseException:
            await self.__aexit__()  # never leave a mosquitto_sub behind
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("MSG\t"):
                _, retained, topic, payload = line.split("\t", 3)
                self.seen.append(Seen(topic, payload, retained == "1", time.time()))
                self._changed.set()

    async def wait_for(
        self, match: Callable[[Seen], bool], within_s: float = 20.0, *, since: int = 0
    ) -> Seen:
        """The first message from index `since` on (`len(watcher.seen)` earlier) that matches."""
        start = since
        async with asyncio.timeout(within_s):
            while True:
                for item in self.seen[start:]:
                    if match(item):
                        return item
                start = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

    def on(self, topic: str) -> list[Seen]:
        return [s for s in self.seen if s.topic == topic]

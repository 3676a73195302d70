"""`acudevice-sim serve` in a subprocess, spoken to over a pseudo-terminal and over TCP."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import serial

from acudevice.protocol import (
    Deframer,
    Envelope,
    Hello,
    HelloResponse,
    Info,
    InfoResponse,
    Kind,
    Message,
    Reason,
    Request,
    Response,
    Result,
    SetLimits,
    Start,
    Telemetry,
    VentStarted,
    decode,
    encode,
    frame,
)
from acudevice.protocol.loading import load_requests
from simulator.cli import main
from simulator.client import ramp_hold_release

pytestmark = [pytest.mark.wire, pytest.mark.model]

SCHEDULE = ramp_hold_release(peak_level=6_000, ramp_ms=6_000, hold_ms=60_000, release_ms=6_000)


class Served:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        assert ready, "the simulator did not say where it serves"
        self.banner = self.proc.stdout.readline().strip()
        prefix = "acudevice-sim: serving "
        assert self.banner.startswith(prefix), self.banner
        self.where = self.banner.rsplit(" on ", 1)[1]

    def terminate(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        s = Served(*args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


class Framed:
    """Request/response over any byte stream with the protocol's serial framing."""

    def __init__(self, write: Callable[[bytes], object], read: Callable[[], bytes]) -> None:
        self._write = write
        self._read = read
        self._deframer = Deframer()
        self._pending: list[bytes] = []
        self.seq = 0
        self.events: list[Message] = []
        self._write(b"\x00")

    def _next(self, deadline: float) -> Envelope:
        while not self._pending:
            if time.monotonic() > deadline:
                raise TimeoutError("no payload")
            self._pending += self._deframer.feed(self._read())
        return decode(self._pending.pop(0))

    def request(self, message: Request[Any], wait_s: float = 2.0) -> Message:
        self.seq += 1
        self._write(frame(encode(message, self.seq)))
        deadline = time.monotonic() + wait_s
        while True:
            env = self._next(deadline)
            if env.kind is Kind.RESPONSE and env.seq == self.seq:
                return env.message
            if env.kind is Kind.EVENT:
                self.events.append(env.message)

    def result(self, message: Request[Any]) -> Result:
        response = self.request(message)
        assert isinstance(response, Response)
        return response.result

    def wait_event(self, predicate: Callable[[Message], bool], wait_s: float) -> Message:
        """The first event or telemetry sample `predicate` accepts, within `wait_s`."""
        deadline = time.monotonic() + wait_s
        while True:
            env = self._next(deadline)
            if env.kind in (Kind.EVENT, Kind.TELEMETRY):
                if env.kind is Kind.EVENT:
                    self.events.append(env.message)
                if predicate(env.message):
                    return env.message


def hello_info(link: Framed, model: str) -> None:
    hello = link.request(Hello())
    assert isinstance(hello, HelloResponse) and hello.result is Result.OK and hello.version == 1
    info = link.request(Info())
    assert isinstance(info, InfoResponse) and info.model == model


def test_pty_speaks_framed_protocol_to_pyserial(served: Callable[..., Served]) -> None:
    sim = served("--pty", "--model", "vibepad-v1", "--seed", "3", "-v")
    assert sim.where.startswith("serial:///dev/")  # a URL `acudevice conformance` takes
    port = serial.Serial(sim.where.removeprefix("serial://"), 115200, timeout=0.05)
    port.reset_input_buffer()
    try:
        link = Framed(port.write, lambda: port.read(256))
        hello_info(link, "vibepad-v1")
    finally:
        port.close()
    code, err = sim.terminate(signal.SIGINT)
    assert code == 0
    assert "-> 01 01 01 00 01 01 01 | REQUEST HELLO seq=1" in err, "-v logs frames in hex"
    assert "RESPONSE INFO" in err


def _tcp(where: str) -> socket.socket:
    assert where.startswith("tcp://127.0.0.1:")
    port = int(where.rsplit(":", 1)[1])
    assert port > 0, "port 0 means the OS picks one, and the banner names it"
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _reader(sock: socket.socket) -> Callable[[], bytes]:
    def read() -> bytes:
        sock.settimeout(0.05)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b""

    return read


def test_tcp_port_zero_serves_and_sigterm_vents_before_exiting(
    served: Callable[..., Served],
) -> None:
    sim = served("--tcp", "0", "--speed", "5", "--seed", "9")
    with _tcp(sim.where) as sock:
        link = Framed(sock.sendall, _reader(sock))
        hello_info(link, "wristband-p1")
        assert link.result(SetLimits(cap_level=SCHEDULE.cap_level)) is Result.OK
        for request in load_requests(SCHEDULE):
            assert link.result(request) is Result.OK
        assert link.result(Start()) is Result.OK
        link.wait_event(lambda m: isinstance(m, Telemetry) and m.measured_level > 5_700, wait_s=20)
        code, err = sim.terminate()
        vent = link.wait_event(lambda m: isinstance(m, VentStarted), wait_s=2)
        assert isinstance(vent, VentStarted) and vent.reason is Reason.HOST_ESTOP
        assert vent.measured_level > 4_000
    assert code == 0
    before = re.search(r"venting first \(([\d.]+) kPa\)", err)
    after = re.search(r"vented to ([\d.]+) kPa", err)
    assert before and after, err
    assert float(before.group(1)) > 5.0 and float(after.group(1)) < 2.0


def test_a_second_tcp_client_replaces_the_first_and_needs_hello(
    served: Callable[..., Served],
) -> None:
    sim = served("--tcp", "0")
    with _tcp(sim.where) as first:
        link = Framed(first.sendall, _reader(first))
        hello_info(link, "wristband-p1")
        with _tcp(sim.where) as second:
            other = Framed(second.sendall, _reader(second))
            assert other.result(SetLimits(cap_level=1_000)) is Result.HELLO_REQUIRED
            hello_info(other, "wristband-p1")
    code, _ = sim.terminate()
    assert code == 0


def test_sigterm_while_idle_exits_zero(served: Callable[..., Served]) -> None:
    sim = served("--tcp", "0", "--fault", "corrupt:0.01")
    code, err = sim.terminate()
    assert code == 0 and "venting first (0.00 kPa)" in err


def test_bad_flags_exit_two_with_a_reason() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", "--tcp", "0", "--fault", "meteor"],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ},
    )
    assert run.returncode == 2 and "unknown fault" in run.stderr


def test_models_lists_the_device_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "wristband-p1\tpressure\tAcuBand P1 pneumatic wrist band" in lines
    assert any(line.startswith("vibepad-v1\tvibration") for line in lines)

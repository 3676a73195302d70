"""SerialTransport through a real pseudo-terminal: pyserial on one end, a peer on the other."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tty
from collections.abc import AsyncIterator, Callable

import pytest

from acudevice.protocol import Heartbeat, Start, encode, frame
from acudevice.transport import Transport, TransportClosed, TransportError
from acudevice.transport.serial import SerialTransport

pytestmark = [
    pytest.mark.wire,
    pytest.mark.timeout(20),
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
]


class Peer:
    """The device end of the pty: records what the host wrote, writes back on request."""

    def __init__(self, master: int, slave: int) -> None:
        self.master, self.slave = master, slave
        self.path = os.ttyname(slave)
        self.received = bytearray()
        self.on_data: Callable[[bytes], None] | None = None
        self.changed = asyncio.Event()
        self._open = True
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO once no one holds the slave side open
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        self.received.extend(data)
        self.changed.set()
        if self.on_data is not None:
            self.on_data(data)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while self.received.count(0) < count:
                self.changed.clear()
                await self.changed.wait()

    def hang_up(self) -> None:
        if self._open:
            self._open = False
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            os.close(self.slave)

    def close(self) -> None:
        self.hang_up()


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    end = Peer(master, slave)
    yield end
    end.close()


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[SerialTransport]:
    transport = SerialTransport(url)
    await transport.connect()
    try:
        yield transport
    finally:
        await transport.close()


async def _next(transport: SerialTransport) -> bytes:
    async with asyncio.timeout(5):
        return await anext(aiter(transport.payloads()))


async def test_frames_written_reach_the_peer_after_a_flushing_delimiter(peer: Peer) -> None:
    async with connected(f"serial://{peer.path}") as transport:
        assert isinstance(transport, Transport)
        payload = encode(Heartbeat(), 258)
        await transport.send(payload)
        await peer.wait_for(2)
        assert bytes(peer.received) == b"\x00" + frame(payload)


async def test_input_waiting_before_open_is_flushed(peer: Peer) -> None:
    stale, fresh = encode(Start(), 1), encode(Start(), 2)
    peer.write(frame(stale))
    await asyncio.sleep(0.05)
    async with connected(f"serial://{peer.path}") as transport:
        peer.write(frame(fresh))
        assert await _next(transport) == fresh


async def test_bad_frames_are_dropped_and_logged(
    peer: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="acudevice.transport")
    good = encode(Start(), 5)
    corrupt = bytearray(frame(good))
    corrupt[2] ^= 0x04
    async with connected(f"serial://{peer.path}") as transport:
        peer.write(b"\xff\xfe\x00" + bytes(corrupt) + frame(good))
        assert await _next(transport) == good
        assert transport.bad_frames == 2
    assert (
        sum(
            r.name == "acudevice.transport" and "bad frame" in r.getMessage()
            for r in caplog.records
        )
        == 2
    )


async def test_peer_hang_up_raises_transport_closed(peer: Peer) -> None:
    async with connected(f"serial://{peer.path}") as transport:
        peer.write(frame(b"\x01\x02"))
        stream = transport.payloads()
        async with asyncio.timeout(5):
            assert await anext(stream) == b"\x01\x02"
            peer.hang_up()
            with pytest.raises(TransportClosed, match="link lost"):
                await anext(stream)
        with pytest.raises(TransportClosed):
            await transport.send(b"\x01")
        await transport.close()


async def test_close_is_idempotent_and_frees_the_port(peer: Peer) -> None:
    url = f"serial://{peer.path}"
    transport = SerialTransport(url)
    await transport.connect()
    await transport.close()
    await transport.close()
    async with connected(url) as again:  # the exclusive lock was released
        assert again.is_open


async def test_a_port_in_use_is_refused_with_advice(peer: Peer) -> None:
    async with connected(f"serial://{peer.path}"):
        second = SerialTransport(f"serial://{peer.path}")
        with pytest.raises(TransportError, match="in use by another program"):
            await second.connect()
        await second.close()


async def test_missing_port_has_advice() -> None:
    transport = SerialTransport("serial:///dev/acudevice-no-such-port")
    with pytest.raises(TransportError) as info:
        await transport.connect()
    assert "no such port /dev/acudevice-no-such-port" in str(info.value)
    assert "list_ports" in str(info.value)


async def test_baud_dtr_and_rts_options_open_the_port(peer: Peer) -> None:
    async with connected(f"serial://{peer.path}?baud=57600&dtr=0&rts=0") as transport:
        assert transport.baud == 57600
        assert (transport.dtr, transport.rts) == (False, False)
        await transport.send(b"\x01")
        await peer.wait_for(2)


async def test_writes_are_paced_by_gap_ms(peer: Peer) -> None:
    async with connected(f"serial://{peer.path}?gap_ms=20") as transport:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(5):
            await transport.send(encode(Start(), n))
        assert loop.time() - start >= 5 * 0.020 * 0.9
        await peer.wait_for(6)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("serial://", "no port"),
        ("serial:///dev/ttyUSB0?baud=fast", "not a number"),
        ("serial:///dev/ttyUSB0?baud=0", "positive whole number"),
        ("serial:///dev/ttyUSB0?dtr=yes", "must be 0 or 1"),
        ("serial:///dev/ttyUSB0?parity=E", "unknown option 'parity'"),
        ("serial:///dev/ttyUSB0?baud=9600&baud=115200", "given 2 times"),
        ("tcp://127.0.0.1:1", "not a serial:// URL"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, fragment: str) -> None:
    with pytest.raises(TransportError, match=fragment):
        SerialTransport(url)


def test_defaults_leave_dtr_and_rts_alone() -> None:
    transport = SerialTransport("serial:///dev/ttyUSB0")
    assert (transport.port, transport.baud, transport.dtr, transport.rts) == (
        "/dev/ttyUSB0",
        115200,
        None,
        None,
    )
    assert transport.min_gap_s == pytest.approx(0.002)

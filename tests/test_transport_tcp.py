"""TcpTransport against a real asyncio server on 127.0.0.1, port chosen by the OS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from acudevice.protocol import Deframer, Start, encode, frame
from acudevice.transport import TransportClosed, TransportError, open_transport
from acudevice.transport.tcp import TcpTransport

pytestmark = [pytest.mark.wire, pytest.mark.timeout(20)]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _next(transport: TcpTransport) -> bytes:
    async with asyncio.timeout(5):
        return await anext(aiter(transport.payloads()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_peer_sees_a_flushing_delimiter_then_frames() -> None:
    received = bytearray()
    done = asyncio.Event()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            received.extend(data)
            if received.count(0) >= 2:
                done.set()
        writer.close()

    async with serve(record) as url:
        transport = TcpTransport(url)
        await transport.connect()
        await transport.send(b"\x01\x02")
        async with asyncio.timeout(5):
            await done.wait()
        assert bytes(received) == b"\x00" + frame(b"\x01\x02")
        await transport.close()


async def test_garbage_and_bad_frames_are_dropped_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = encode(Start(), 42)
    bad = bytearray(frame(good))
    bad[3] ^= 0x10

    async def noisy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x13\x37" * 300 + b"\x00" + bytes(bad) + frame(good))
        await writer.drain()
        await reader.read()
        writer.close()

    caplog.set_level(logging.WARNING, logger="acudevice.transport")
    async with serve(noisy) as url:
        transport = TcpTransport(url)
        await transport.connect()
        assert await _next(transport) == good
        assert transport.bad_frames == 2
        await transport.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "acudevice.transport"]
    assert any("oversize" in m for m in messages)
    assert any("bad CRC" in m or "COBS" in m for m in messages)


async def test_peer_closing_ends_payloads_with_transport_closed_after_queued_ones() -> None:
    last = encode(Start(), 9)

    async def one_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(1) == b"\x00"  # unread input would make close an RST
        writer.write(frame(last))
        await writer.drain()
        writer.close()

    async with serve(one_then_hang_up) as url:
        transport = TcpTransport(url)
        await transport.connect()
        stream = transport.payloads()
        async with asyncio.timeout(5):
            assert await anext(stream) == last
            with pytest.raises(TransportClosed, match="closed the connection"):
                await anext(stream)
        with pytest.raises(TransportClosed):
            await transport.send(last)
        await transport.close()
        await transport.close()


async def test_connection_refused_has_advice() -> None:
    port = _free_port()
    transport = TcpTransport(f"tcp://127.0.0.1:{port}")
    with pytest.raises(TransportError) as info:
        await transport.connect()
    assert not isinstance(info.value, TransportClosed)
    assert f"connection refused at 127.0.0.1:{port}" in str(info.value)
    assert "acudevice-sim serve" in str(info.value)
    await transport.close()


async def test_unresolvable_host_has_advice() -> None:
    transport = TcpTransport("tcp://no-such-host.invalid:7000")
    with pytest.raises(TransportError, match="cannot resolve host"):
        await transport.connect()


async def test_writes_are_paced_by_gap_ms() -> None:
    async with serve(echo) as url:
        transport = TcpTransport(url + "?gap_ms=25")
        await transport.connect()
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(5):
            await transport.send(encode(Start(), n))
        assert loop.time() - start >= 5 * 0.025 * 0.9
        await transport.close()


async def test_an_unread_flood_keeps_the_newest_payloads() -> None:
    payloads = [encode(Start(), n) for n in range(1100)]

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"".join(frame(p) for p in payloads))
        await writer.drain()
        await reader.read()
        writer.close()

    async with serve(flood) as url:
        transport = TcpTransport(url)
        await transport.connect()
        async with asyncio.timeout(5):
            while transport._deframer.frame_count < len(payloads):  # noqa: ASYNC110 (no event)
                await asyncio.sleep(0.01)
        assert transport.dropped_payloads == 76
        assert await _next(transport) == payloads[76]
        await transport.close()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("tcp://127.0.0.1", "tcp://HOST:PORT"),
        ("tcp://127.0.0.1:99999", "port is not a number"),
        ("tcp://127.0.0.1:7000/x", "no path"),
        ("tcp://127.0.0.1:7000?speed=3", "unknown option 'speed'"),
        ("tcp://127.0.0.1:7000?gap_ms=fast", "not a number"),
        ("serial:///dev/x", "not a tcp:// URL"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, fragment: str) -> None:
    with pytest.raises(TransportError, match=fragment):
        TcpTransport(url)


def test_registry_finds_tcp_and_serial_by_scheme() -> None:
    assert isinstance(open_transport("tcp://127.0.0.1:7000"), TcpTransport)
    from acudevice.transport.serial import SerialTransport

    assert isinstance(open_transport("serial:///dev/ttyUSB0"), SerialTransport)


def test_deframer_is_fresh_per_transport() -> None:
    a, b = TcpTransport("tcp://127.0.0.1:1"), TcpTransport("tcp://127.0.0.1:1")
    assert a._deframer is not b._deframer
    assert isinstance(a._deframer, Deframer)


class _SilentTcp(TcpTransport):
    """A peer that never completes the handshake: only the opening step is replaced."""

    async def _open(self) -> None:
        await asyncio.sleep(30)


async def test_connect_gives_up_at_its_deadline() -> None:
    transport = _SilentTcp("tcp://127.0.0.1:7000?timeout_s=0.1")
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TransportError, match=r"no connection within 0\.1 s"):
        await transport.connect()
    assert loop.time() - start < 2
    with pytest.raises(TransportClosed):
        await transport.send(b"\x01")
    await transport.close()


async def test_cancelling_whoever_closes_the_link_is_not_swallowed() -> None:
    """Regression (issue 18): closing waited for its reader inside
    `suppress(CancelledError)`, which also ate a cancel aimed at the task closing it."""
    async with serve(echo) as url:
        transport = TcpTransport(url)
        await transport.connect()
        closer = asyncio.create_task(transport.close())
        await asyncio.sleep(0)  # the closer is now waiting for the reader to end
        closer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closer
        await transport.close()


async def test_a_write_done_while_this_process_stalled_is_not_a_stalled_link() -> None:
    """Regression: a frozen host (or a busy machine) woke after the write deadline, and the
    deadline's wake-up ran before the completion of a write that had finished meanwhile: the
    link was closed as "write stalled" though nothing stalled but us."""
    import time

    async with serve(echo) as url:
        transport = TcpTransport(url)
        await transport.connect()
        try:
            transport.write_timeout_s = 0.2
            loop = asyncio.get_running_loop()

            async def slow_write(data: bytes) -> None:  # done 50 ms in, on another thread
                await loop.run_in_executor(None, time.sleep, 0.05)

            transport._write = slow_write  # type: ignore[method-assign]
            sending = asyncio.create_task(transport.send(encode(Start(), 1)))
            await asyncio.sleep(0)  # the write is under way in the executor
            loop.call_soon(time.sleep, 0.5)  # then the whole process freezes past the deadline
            await sending
            assert transport.is_open
        finally:
            await transport.close()

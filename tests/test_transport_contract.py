"""The transport contract (acudevice.transport.base.Transport), once for every link.

The same checks run over the in-process simulator (`sim://`), a real pseudo-terminal
through pyserial (`serial://`) and a TCP socket (`tcp://`), each with the simulated firmware
answering on the far side, so the links cannot drift apart in what they promise.
Medium-specific behaviour (pacing, flushing, port locks, floods) stays in each link's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from acudevice.protocol import Hello, Info, Kind, Status, decode, encode
from acudevice.transport import Transport, TransportClosed, TransportError, open_transport
from tests.sim_server import serve

pytestmark = pytest.mark.wire

LINKS = ["sim", "pty", "tcp"]


@pytest.fixture(scope="module", params=LINKS)
def device_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A simulated band on each kind of link; one server per module, one host at a time."""
    if request.param == "sim":
        yield "sim://?speed=max"
        return
    flags = ("--pty",) if request.param == "pty" else ("--tcp", "0")
    with serve(*flags, "--speed", "20") as url:
        yield url


async def _responses(transport: Transport, count: int) -> list[int]:
    """Sequence numbers of the next `count` responses, skipping events and telemetry."""
    seqs: list[int] = []
    async with asyncio.timeout(10):
        async for payload in transport.payloads():
            envelope = decode(payload)
            if envelope.kind is Kind.RESPONSE:
                seqs.append(envelope.seq)
                if len(seqs) == count:
                    break
    return seqs


async def test_nothing_moves_before_connect(device_url: str) -> None:
    transport = open_transport(device_url)
    assert isinstance(transport, Transport)
    with pytest.raises(TransportClosed):
        await transport.send(encode(Hello(), 1))
    with pytest.raises(TransportClosed):
        await anext(aiter(transport.payloads()))
    await transport.close()


async def test_requests_are_answered_in_order_with_their_sequence_numbers(
    device_url: str,
) -> None:
    transport = open_transport(device_url)
    await transport.connect()
    try:
        requests = [Hello(), Info(), Status(), Status()]
        assert transport.mtu >= max(len(encode(r, 1)) for r in requests)
        for seq, request in enumerate(requests, start=700):
            await transport.send(encode(request, seq))
        assert await _responses(transport, len(requests)) == [700, 701, 702, 703]
    finally:
        await transport.close()


async def test_a_transport_connects_once(device_url: str) -> None:
    transport = open_transport(device_url)
    await transport.connect()
    try:
        with pytest.raises(TransportError):
            await transport.connect()
    finally:
        await transport.close()


async def test_close_wakes_a_waiting_reader_is_idempotent_and_ends_sending(
    device_url: str,
) -> None:
    transport = open_transport(device_url)
    await transport.connect()
    await transport.send(encode(Hello(), 1))
    assert await _responses(transport, 1) == [1]

    async def read_until_closed() -> None:
        async for _ in transport.payloads():
            pass

    reader = asyncio.create_task(read_until_closed())
    await asyncio.sleep(0)
    await transport.close()
    async with asyncio.timeout(5):
        with pytest.raises(TransportClosed):
            await reader
    await transport.close()
    with pytest.raises(TransportClosed):
        await transport.send(encode(Hello(), 2))


async def test_the_next_host_can_connect_after_a_close(device_url: str) -> None:
    for seq in (10, 11):
        transport = open_transport(device_url)
        await transport.connect()
        try:
            await transport.send(encode(Hello(), seq))
            assert await _responses(transport, 1) == [seq]
        finally:
            await transport.close()

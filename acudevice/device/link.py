"""Request/response matching over a transport: one reader, one writer, deadlines everywhere.

Replies are matched by sequence number; a late or stray reply is logged and dropped, so one
slow answer cannot shift every later one. Every wait races the disconnect. ESTOP jumps the
write queue and is pre-encoded with a reserved sequence number, so sending it computes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from acudevice.device.errors import DeviceDisconnected, RequestTimeout
from acudevice.protocol import Estop, Kind, ProtocolError, Request, Response, encode, try_decode
from acudevice.protocol.messages import Event, Telemetry, TelemetryBatch
from acudevice.transport import Transport, TransportClosed

log = logging.getLogger("acudevice.device")

ESTOP_SEQ = 0  # reserved: ordinary requests use 1..0xFFFF
RESENDS = 3
"""Times an idempotent request is sent again (same seq, same bytes) inside its deadline when
no reply came: one damaged frame either way must not end a session."""
STREAM_QUEUE = 2048
R = TypeVar("R", bound=Response)
Sink = Callable[[Telemetry | TelemetryBatch | Event | None], None]
"""Called in the reader with each sample, batch of samples or event as it is decoded; None
means the link is gone. It must not block: it hands the item on and returns."""


async def reap(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel tasks and wait for them to end, without swallowing our own cancellation.

    (`suppress(BaseException)` around `await task` would also eat a cancel aimed at us.)
    """
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


class _Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Telemetry | Event | None] = asyncio.Queue(STREAM_QUEUE)

    def put(self, item: Telemetry | TelemetryBatch | Event | None) -> None:
        if isinstance(item, TelemetryBatch):  # a stream yields samples, however they came
            for sample in item.samples:
                self._put(sample)
        else:
            self._put(item)

    def _put(self, item: Telemetry | Event | None) -> None:
        if self.queue.full():  # a slow consumer loses the oldest, never blocks the reader
            self.queue.get_nowait()
        self.queue.put_nowait(item)


class Link:
    def __init__(self, transport: Transport, *, write_gap_s: float = 0.0) -> None:
        self.transport = transport
        self._write_gap_s = write_gap_s
        self._seq = 0
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._estop_wanted = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._sinks: list[Sink] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._estop_payload = encode(Estop(), ESTOP_SEQ)
        self.close_reason: str | None = None

    @property
    def connected(self) -> bool:
        return not self._closed.is_set()

    async def open(self) -> None:
        await self.transport.connect()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="acudevice-reader"),
            asyncio.create_task(self._write_loop(), name="acudevice-writer"),
        ]

    async def close(self, reason: str = "closed by host") -> None:
        """Best effort, never raises; the disconnect path writes nothing."""
        self._mark_closed(reason)
        await reap(self._tasks)
        with contextlib.suppress(Exception):
            await self.transport.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _mark_closed(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        self._wakeup.set()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DeviceDisconnected(f"link lost: {reason}"))
        self._pending.clear()
        for sink in list(self._sinks):
            sink(None)

    def _next_seq(self) -> int:
        for _ in range(0xFFFF):
            self._seq = self._seq % 0xFFFF + 1
            if self._seq not in self._pending:
                return self._seq
        raise RuntimeError("every sequence number is in flight")

    async def request(
        self, message: Request[Any], *, deadline_s: float, resend: bool = False
    ) -> Response:
        """Send and wait for the reply with the same seq; raises on timeout or disconnect.

        `resend`: the request is idempotent, so it is sent again, byte for byte, when no reply
        came within a quarter of the deadline. A band that did get it answers the duplicate
        from its last response without acting twice (docs/protocol.md, duplicates).
        """
        if isinstance(message, Estop):
            return await self._exchange(
                self._estop_payload, ESTOP_SEQ, "ESTOP", deadline_s, resends=RESENDS
            )
        seq = self._next_seq()
        name = type(message).__name__.upper()
        resends = RESENDS if resend else 0
        return await self._exchange(encode(message, seq), seq, name, deadline_s, resends=resends)

    async def exchange_raw(self, payload: bytes, *, seq: int, deadline_s: float) -> Response:
        """Send hand-made payload bytes and wait for the reply to `seq` (conformance, fuzzing)."""
        return await self._exchange(payload, seq, f"raw payload {payload.hex()}", deadline_s)

    async def _exchange(
        self, payload: bytes, seq: int, what: str, deadline_s: float, *, resends: int = 0
    ) -> Response:
        if self._closed.is_set():
            raise DeviceDisconnected(f"link lost: {self.close_reason}")
        fut = self.expect(seq)
        self._send(payload, seq)
        try:
            async with asyncio.timeout(deadline_s):
                for _ in range(resends):
                    done, _ = await asyncio.wait({fut}, timeout=deadline_s / (resends + 1))
                    if done:
                        break
                    log.info("no reply to %s yet: sending it again", what)
                    self._send(payload, seq)
                return await fut
        except TimeoutError:
            raise RequestTimeout(what, deadline_s) from None
        finally:
            if self._pending.get(seq) is fut:
                del self._pending[seq]
            if fut.done() and not fut.cancelled():
                fut.exception()  # a loss that raced our own cancel: seen, not "never retrieved"

    def _send(self, payload: bytes, seq: int) -> None:
        if seq == ESTOP_SEQ:
            self._estop_wanted.set()  # jumps the queue: the writer sends it next
        else:
            self._outbox.put_nowait(payload)
        self._wakeup.set()

    def expect(self, seq: int) -> asyncio.Future[Response]:
        """A future for the reply to `seq`, for payloads sent around the writer (raw frames)."""
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[seq] = fut
        return fut

    def forget(self, seq: int) -> None:
        self._pending.pop(seq, None)

    def subscribe(self, sink: Sink) -> Callable[[], None]:
        """Hand every telemetry sample and event to `sink` as it arrives; returns the way to
        stop. Nothing is queued in between, so a session sees samples one hop from the wire."""
        self._sinks.append(sink)
        if self._closed.is_set():
            sink(None)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._sinks.remove(sink)

        return unsubscribe

    def stream(self) -> AsyncIterator[Telemetry | Event]:
        sub = _Subscription()
        return self._drain(sub, self.subscribe(sub.put))

    async def _drain(
        self, sub: _Subscription, unsubscribe: Callable[[], None]
    ) -> AsyncIterator[Telemetry | Event]:
        try:
            while True:
                item = await sub.queue.get()
                if item is None:
                    raise DeviceDisconnected(f"link lost: {self.close_reason}")
                yield item
        finally:
            unsubscribe()

    async def _write_loop(self) -> None:
        try:
            while not self._closed.is_set():
                if self._estop_wanted.is_set():
                    self._estop_wanted.clear()
                    await self.transport.send(self._estop_payload)
                elif not self._outbox.empty():
                    await self.transport.send(self._outbox.get_nowait())
                else:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if self._write_gap_s:
                    await asyncio.sleep(self._write_gap_s)
        except TransportClosed as exc:
            self._mark_closed(str(exc) or "transport closed")
        except Exception as exc:  # pragma: no cover - a bug must not leave waiters hanging
            log.exception("writer failed")
            self._mark_closed(f"writer failed: {exc}")

    async def _read_loop(self) -> None:
        try:
            async for payload in self.transport.payloads():
                self._dispatch(payload)
            self._mark_closed("device closed the link")
        except TransportClosed as exc:
            self._mark_closed(str(exc) or "transport closed")
        except Exception as exc:  # pragma: no cover
            log.exception("reader failed")
            self._mark_closed(f"reader failed: {exc}")

    def _dispatch(self, payload: bytes) -> None:
        decoded = try_decode(payload)
        if isinstance(decoded, ProtocolError):
            log.warning("dropped an undecodable payload %s: %s", payload.hex(), decoded)
            return
        message = decoded.message
        if decoded.kind is Kind.RESPONSE:
            fut = self._pending.get(decoded.seq)
            if fut is None or fut.done():
                log.info("dropped a stray or late reply seq=%d %s", decoded.seq, message)
                return
            assert isinstance(message, Response)
            fut.set_result(message)
        elif isinstance(message, Telemetry | TelemetryBatch | Event):
            for sink in self._sinks:
                sink(message)

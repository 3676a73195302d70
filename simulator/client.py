"""A minimal protocol client for the simulator's own tests, benchmark and smoke checks.

It is not the host library (that is `acudevice`'s device layer): no retries, no safety
monitor. It sends requests over any `Transport`, matches responses by seq, and records
events and telemetry with the loop time they arrived, so a test can assert on them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from acudevice.protocol import (
    Ack,
    ActuatorCode,
    Envelope,
    Event,
    FirmwareState,
    Heartbeat,
    Hello,
    Kind,
    Message,
    PhaseCode,
    ProtocolError,
    Request,
    Response,
    Result,
    SetLimits,
    ShapeCode,
    Start,
    StateChanged,
    Telemetry,
    TelemetryBatch,
    decode,
    encode,
)
from acudevice.protocol.loading import WireSchedule, WireSegment, load_requests
from acudevice.transport.base import Transport, TransportClosed
from simulator.core.device import SimDevice
from simulator.core.errors import SimError

E = TypeVar("E", bound=Event)


class RequestRefused(SimError):
    def __init__(self, request: Request[Any], response: Response) -> None:
        self.request = request
        self.response = response
        super().__init__(f"{type(request).__name__} refused: {response.result.name}")


@dataclass(frozen=True)
class Received:
    wall: float
    seq: int
    message: Message


class ProtocolClient:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.events: list[Received] = []
        self.telemetry: list[Received] = []
        self.undecodable: list[ProtocolError] = []
        self.strays: list[Envelope] = []
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.closed: TransportClosed | None = None

    async def __aenter__(self) -> ProtocolClient:
        await self.transport.connect()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the link and wait for the reader; a cancel aimed at the caller goes on
        (`asyncio.wait` never raises the reader's outcome, unlike `await` in a suppress)."""
        self.stop_heartbeat()
        await self.transport.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for payload in self.transport.payloads():
                self._accept(payload, loop.time())
        except TransportClosed as exc:
            self.closed = exc
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._changed.set()

    def _accept(self, payload: bytes, wall: float) -> None:
        try:
            env = decode(payload)
        except ProtocolError as exc:
            self.undecodable.append(exc)
            return
        if env.kind is Kind.RESPONSE:
            future = self._waiting.pop(env.seq, None)
            if future is None or future.done():
                self.strays.append(env)
            else:
                future.set_result(env.message)
            return
        record = Received(wall, env.seq, env.message)
        (self.telemetry if env.kind is Kind.TELEMETRY else self.events).append(record)
        self._changed.set()

    async def send_raw(self, payload: bytes) -> None:
        await self.transport.send(payload)

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    async def request(self, message: Request[Any], *, wait_s: float = 1.0) -> Message:
        """Send and wait for the response with the same seq; `TimeoutError` if none."""
        seq = self.next_seq()
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = future
        try:
            await self.transport.send(encode(message, seq))
            return await asyncio.wait_for(future, wait_s)
        finally:
            self._waiting.pop(seq, None)

    async def call(self, message: Request[Any], *, wait_s: float = 1.0) -> Message:
        """`request`, raising `RequestRefused` unless the result is OK."""
        response = await self.request(message, wait_s=wait_s)
        assert isinstance(response, Response)
        if response.result is not Result.OK:
            raise RequestRefused(message, response)
        return response

    async def result(self, message: Request[Any], *, wait_s: float = 1.0) -> Result:
        response = await self.request(message, wait_s=wait_s)
        assert isinstance(response, Response)
        return response.result

    async def prepare(self, schedule: WireSchedule, *, cap_level: int | None = None) -> None:
        """HELLO, SET_LIMITS and the whole LOAD: the device ends LOADED."""
        await self.call(Hello())
        await self.call(SetLimits(cap_level=schedule.cap_level if cap_level is None else cap_level))
        for request in load_requests(schedule):
            response = await self.call(request)
            assert isinstance(response, Ack)

    async def start(self, *, heartbeat_s: float | None = 1.0) -> None:
        await self.call(Start())
        if heartbeat_s is not None:
            self.start_heartbeat(heartbeat_s)

    def start_heartbeat(self, interval_s: float = 1.0) -> None:
        async def beat() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await self.request(Heartbeat(), wait_s=interval_s)
                await asyncio.sleep(interval_s)

        self.stop_heartbeat()
        self._heartbeat = asyncio.get_running_loop().create_task(beat())

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    def events_of(self, kind: type[E]) -> list[E]:
        return [r.message for r in self.events if isinstance(r.message, kind)]

    def samples(self) -> list[Telemetry]:
        """Every sample received, batches unpacked, in order."""
        out: list[Telemetry] = []
        for r in self.telemetry:
            if isinstance(r.message, TelemetryBatch):
                out += r.message.samples
            elif isinstance(r.message, Telemetry):
                out.append(r.message)
        return out

    async def wait_for(self, predicate: Callable[[ProtocolClient], bool], *, wait_s: float) -> None:
        """Until `predicate(self)` holds; `TimeoutError` after `wait_s` wall seconds.

        Checked on every message received and at least every 20 ms (a predicate may look at
        the simulated device itself while the link is silent)."""
        async with asyncio.timeout(wait_s):
            while not predicate(self):
                self._changed.clear()
                if self.closed is not None and not predicate(self):
                    raise self.closed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    async def wait_event(
        self, kind: type[E], *, wait_s: float, where: Callable[[E], bool] | None = None
    ) -> E:
        def found(client: ProtocolClient) -> bool:
            return any(where is None or where(e) for e in client.events_of(kind))

        await self.wait_for(found, wait_s=wait_s)
        return next(e for e in self.events_of(kind) if where is None or where(e))


def states(events: Iterable[Event]) -> list[tuple[str, str, str]]:
    """StateChanged events as (old, new, reason) names, for readable assertions."""
    return [(e.old.name, e.new.name, e.reason.name) for e in events if isinstance(e, StateChanged)]


def ramp_hold_release(
    *,
    peak_level: int,
    ramp_ms: int,
    hold_ms: int,
    release_ms: int,
    repeats: int = 1,
    cap_level: int | None = None,
    actuator: ActuatorCode = ActuatorCode.PRESSURE,
) -> WireSchedule:
    """The classic acupressure shape as a wire schedule, built directly (no program file).

    `ramp_hold_release(peak_level=12000, ramp_ms=30000, hold_ms=60000, release_ms=30000,
    repeats=4)` is the nausea-relief shape: 8 minutes.
    """
    segments = [
        WireSegment(
            duration_ms=duration,
            from_level=start,
            to_level=end,
            shape=ShapeCode.LINEAR,
            phase=phase,
            phase_index=index,
            repeat=repeat,
        )
        for repeat in range(repeats)
        for index, (phase, duration, start, end) in enumerate(
            (
                (PhaseCode.RAMP, ramp_ms, 0, peak_level),
                (PhaseCode.HOLD, hold_ms, peak_level, peak_level),
                (PhaseCode.RELEASE, release_ms, peak_level, 0),
            )
        )
    ]
    return WireSchedule(
        actuator=actuator,
        cap_level=peak_level if cap_level is None else cap_level,
        frequency_dhz=0,
        segments=tuple(segments),
    )


class DirectClient:
    """Requests straight into a `SimDevice`, no transport, no event loop (unit tests).

    Output (events and telemetry) is decoded into `events` and `telemetry` as the device
    is stepped with `advance`; `wall` is the watchdog's clock (`advance` moves it along).
    """

    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self.wall = 0.0
        self.events: list[Event] = []
        self.telemetry: list[Telemetry] = []
        self._seq = 0
        self._last_beat = 0.0

    def raw(self, payload: bytes) -> Envelope | None:
        """Send a payload as-is; the decoded response, or None when it was dropped."""
        response = self.device.handle(payload, self.wall)
        self._collect(self.device.take_output())
        return decode(response) if response is not None else None

    def request(self, message: Request[Any]) -> Response:
        self._seq = (self._seq + 1) & 0xFFFF
        envelope = self.raw(encode(message, self._seq))
        assert envelope is not None and envelope.seq == self._seq
        assert isinstance(envelope.message, Response)
        return envelope.message

    def result(self, message: Request[Any]) -> Result:
        return self.request(message).result

    def call(self, message: Request[Any]) -> Response:
        response = self.request(message)
        if response.result is not Result.OK:
            raise RequestRefused(message, response)
        return response

    def prepare(self, schedule: WireSchedule, *, cap_level: int | None = None) -> None:
        self.call(Hello())
        self.call(SetLimits(cap_level=schedule.cap_level if cap_level is None else cap_level))
        for request in load_requests(schedule):
            self.call(request)

    def advance(self, seconds: float, *, heartbeat_s: float | None = 1.0) -> None:
        """Step the device for `seconds` of device time, the watchdog's wall clock moving
        with it (as at speed 1) and a HEARTBEAT sent every `heartbeat_s` of it. With
        `heartbeat_s=None` nothing is sent, so a session starves the watchdog."""
        end = self.device.now_ms + round(seconds * 1000)
        while self.device.now_ms < end:
            self._step(heartbeat_s, end)

    def _step(self, heartbeat_s: float | None, until_ms: int | None = None) -> None:
        """One event of device time, the wall clock moving with it."""
        device = self.device
        self.wall += (device.next_event_ms(until_ms) - device.now_ms) / 1000.0
        if heartbeat_s is not None and self.wall - self._last_beat >= heartbeat_s:
            self._last_beat = self.wall
            self._seq = (self._seq + 1) & 0xFFFF
            self.raw(encode(Heartbeat(), self._seq))  # unanswered while browned out
        device.step(self.wall, until_ms)
        self._collect(device.take_output())

    def step(self, steps: int = 1) -> None:
        """Step device time with the watchdog's wall clock held where `wall` is."""
        for _ in range(steps):
            self.device.step(self.wall)
            self._collect(self.device.take_output())

    def advance_until(self, predicate: Callable[[DirectClient], bool], *, limit_s: float) -> float:
        """Step until `predicate` holds; device seconds taken. `AssertionError` past the limit."""
        start = self.device.now_ms
        while not predicate(self):
            if self.device.now_ms - start > limit_s * 1000:
                raise AssertionError(f"condition not reached within {limit_s} s of device time")
            self._step(1.0)
        return (self.device.now_ms - start) / 1000.0

    def _collect(self, payloads: Iterable[bytes]) -> None:
        for payload in payloads:
            message = decode(payload).message
            if isinstance(message, Telemetry):
                self.telemetry.append(message)
            elif isinstance(message, TelemetryBatch):
                self.telemetry.extend(message.samples)
            else:
                assert isinstance(message, Event)
                self.events.append(message)

    def events_of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def state(self) -> FirmwareState:
        return self.device.firmware.state

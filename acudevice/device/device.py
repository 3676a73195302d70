"""`Device`: one connected band, async and always left stopped.

async with acudevice.connect("sim://") as band:
    await band.set_limits(20_000)
    await band.load(schedule)
    await band.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from acudevice.device.addresses import open_device_transport
from acudevice.device.errors import (
    DeviceDisconnected,
    DeviceError,
    IncompatibleDevice,
    RequestRefused,
    RequestTimeout,
)
from acudevice.device.link import Link, Sink, reap
from acudevice.device.loading import schedule_load_requests, schedule_refusals
from acudevice.errors import NotFoundError
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.plan.library import load_device
from acudevice.plan.schedule import Schedule
from acudevice.protocol import (
    MAX_PROTOCOL_VERSION,
    MIN_PROTOCOL_VERSION,
    Capabilities,
    Estop,
    FirmwareState,
    Heartbeat,
    Hello,
    HelloResponse,
    Info,
    InfoResponse,
    Pause,
    Request,
    Response,
    Result,
    Resume,
    SetLimits,
    SetTelemetry,
    Start,
    Status,
    StatusResponse,
    Stop,
)
from acudevice.protocol.messages import Event, Telemetry
from acudevice.safety.findings import PlanRefused
from acudevice.safety.rules import HEARTBEAT_INTERVAL_S
from acudevice.transport import Transport

log = logging.getLogger("acudevice.device")

_ADVICE = {
    Result.ABOVE_CAP: "the value is above the device's active cap",
    Result.ABOVE_HARDWARE_MAX: "the value is above the device's hardware maximum",
    Result.LIMITS_NOT_SET: "send the limits before loading a schedule",
    Result.BUSY: "the device is already running a program; stop it first",
    Result.BAD_STATE: "the device is not in a state that allows this",
    Result.NOT_PERMITTED: "the link is not authorised for control; pair the band",
    Result.FAULTED: "the device has a latched fault; stop it to clear",
    Result.LOW_BATTERY: "charge the band",
}


_IDEMPOTENT = (Hello, Info, Status, Heartbeat, SetLimits, SetTelemetry, Stop)
"""Requests that mean the same the second time: one that got no answer within its deadline
is tried once more as a whole. The rest (LOAD, START, PAUSE, RESUME) are not: a band that
acted on the first would refuse the second, so a lost one is settled by asking the band
where it is (`_settled`), or a lost LOAD step by uploading again from LOAD_BEGIN."""
_ACTIVE = (FirmwareState.RUNNING, FirmwareState.PAUSED, FirmwareState.LOADED)


SILENT_AFTER = 2
"""Heartbeats in a row with no answer (each after its resends) before a link is called silent."""
AUTO_BATCH_MS = 1000
"""What a band at speed=max is asked to hold (its own time): the host's alarms then trail
the band by at most a second of the simulated session, a fraction of a millisecond of ours."""


@dataclass(frozen=True)
class DeviceInfo:
    url: str
    model: str
    firmware_version: str
    serial: str
    protocol_version: int
    capabilities: Capabilities
    hardware_max_level: int
    battery_percent: int
    time_scale: int
    device_model: PressureDevice | VibrationDevice
    ramp_limit_per_s: int
    """The steepest segment the firmware accepts (INFO); steeper ones it refuses."""


class Device:
    """A connected device. Construct with `connect(url)`; use `async with`."""

    def __init__(
        self,
        transport: Transport,
        *,
        request_timeout_s: float = 2.0,
        heartbeat_interval_s: float | None = HEARTBEAT_INTERVAL_S,
        telemetry_batch_ms: int | None = None,
    ) -> None:
        """`heartbeat_interval_s=None` sends no heartbeats: the device's watchdog will vent.

        `telemetry_batch_ms`: SET_TELEMETRY after connecting. None chooses: a band with a
        clock (real time, or a simulator at speed N) sends each sample alone, so the host sees
        and records it at once; a band with no clock at all (a simulator at speed=max) that
        can batch is asked to hold up to 1 s of its time, since one payload per sample is then
        what the host spends its time on.
        """
        self.url = transport.url
        self._link = Link(transport)
        self._timeout = request_timeout_s
        self._heartbeat_interval = heartbeat_interval_s
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._info: DeviceInfo | None = None
        self._telemetry_batch_ms = telemetry_batch_ms
        self._one_at_a_time = asyncio.Lock()

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(vent=exc_type is not None)

    async def open(self) -> None:
        await self._link.open()
        try:
            hello = await self._link.request(
                Hello(min_version=MIN_PROTOCOL_VERSION, max_version=MAX_PROTOCOL_VERSION),
                deadline_s=self._timeout,
                resend=True,
            )
            assert isinstance(hello, HelloResponse)
            if hello.result != Result.OK or hello.version == 0:
                raise IncompatibleDevice(
                    f"{self.url}: the firmware speaks protocol versions {hello.device_min_version}"
                    f"..{hello.device_max_version}; this acudevice speaks "
                    f"{MIN_PROTOCOL_VERSION}..{MAX_PROTOCOL_VERSION} — update one of them"
                )
            self._info = await self._read_info()
            batch_ms = self._batch_ms_for(self._info)
            if batch_ms:
                await self.set_telemetry_batch(batch_ms)
        except BaseException:
            await self.close(vent=True)
            raise
        if self._heartbeat_interval is not None:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat_loop(self._heartbeat_interval), name="acudevice-heartbeat"
            )

    async def close(self, *, vent: bool = False) -> None:
        """Leave the device stopped (`leave_stopped`), then close the link; never raises."""
        if self._heartbeat_task is not None:
            await reap([self._heartbeat_task])
        if self._link.connected:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.leave_stopped(vent=vent))
        await self._link.close()

    async def leave_stopped(self, *, vent: bool = False) -> None:
        """The one way a band is left at rest: ESTOP (vent now) after an error or a cancel,
        otherwise STOP (a graceful release) if it is running, paused or loaded.

        Writes nothing on a link that is gone: the band's watchdog vents it then.
        """
        if not self._link.connected:
            return
        if vent:
            await self.estop()
        elif (await self.status()).state in _ACTIVE:
            await self._request(Stop())

    @property
    def link(self) -> Link:
        """The request/response layer, for conformance checks that need raw access."""
        return self._link

    @property
    def connected(self) -> bool:
        return self._link.connected

    async def wait_disconnected(self) -> None:
        await self._link.wait_closed()

    # ---------------------------------------------------------------- requests

    async def _request(self, message: Request[Any]) -> Response:
        try:
            response = await self._exchange(message)
        except RequestTimeout:
            if not isinstance(message, _IDEMPOTENT):
                raise
            log.info("%s: no answer to %s; trying once more", self.url, type(message).__name__)
            response = await self._exchange(message)
        if response.result != Result.OK:
            name = type(message).__name__.upper()
            raise RequestRefused(
                name, Result(response.result), _ADVICE.get(Result(response.result), "")
            )
        return response

    async def _exchange(self, message: Request[Any]) -> Response:
        """One request at a time per band (ESTOP excepted: it jumps every queue). So the band's
        previous request is always our last one, and a frame sent again byte for byte (same
        seq) is either the first it sees or answered from its memory of that reply, never
        executed twice (docs/protocol.md, "Resent requests"): every request may be resent."""
        async with self._one_at_a_time:
            return await self._link.request(message, deadline_s=self._timeout, resend=True)

    async def _settled(self, message: Request[Any], done: FirmwareState) -> None:
        """Send a request that must not be repeated blindly; if its answer is lost, ask the
        band whether it acted (its state is `done`) and send it once more only if not."""
        try:
            await self._request(message)
        except RequestTimeout:
            if (await self.status()).state is done:
                return
            log.info("%s: %s was lost; sending it again", self.url, type(message).__name__)
            await self._request(message)

    async def _read_info(self) -> DeviceInfo:
        info = await self._request(Info())
        assert isinstance(info, InfoResponse)
        try:
            model = load_device(info.model)
        except NotFoundError:
            raise IncompatibleDevice(
                f"{self.url}: the device reports model {info.model!r}, which is not in "
                "profiles/devices/; add its model file or update acudevice"
            ) from None
        return DeviceInfo(
            url=self.url,
            model=info.model,
            firmware_version=info.firmware_version,
            serial=info.serial,
            protocol_version=info.protocol_version,
            capabilities=info.capabilities,
            hardware_max_level=info.hardware_max_level,
            battery_percent=info.battery_percent,
            time_scale=info.time_scale,
            device_model=model,
            ramp_limit_per_s=info.ramp_limit_per_s,
        )

    def _batch_ms_for(self, info: DeviceInfo) -> int:
        if self._telemetry_batch_ms is not None:
            return self._telemetry_batch_ms
        unbounded = info.time_scale == 0
        return (
            AUTO_BATCH_MS if unbounded and info.capabilities & Capabilities.TELEMETRY_BATCH else 0
        )

    @property
    def info(self) -> DeviceInfo:
        if self._info is None:
            raise DeviceError("not connected: use `async with connect(url)`")
        return self._info

    async def set_limits(self, cap_level: int) -> None:
        await self._request(SetLimits(cap_level=cap_level))

    async def set_telemetry_batch(self, batch_ms: int) -> None:
        """Let the band hold samples up to `batch_ms` and send them batched (0: one each).

        `stream()` still yields every sample, in order. Refused (`RequestRefused`) by a band
        without `TELEMETRY_BATCH` in INFO, and above 5000 ms. Every HELLO resets it to 0.
        """
        await self._request(SetTelemetry(batch_ms=batch_ms))

    async def load(self, schedule: Schedule) -> None:
        """Send a schedule; refused here, before any byte, if it breaks its own cap.

        The host checks what the firmware will check too. A step whose answer is lost is not
        repeated (the band may have taken it); the upload starts again from LOAD_BEGIN, once.
        """
        info = self.info
        if schedule.actuator != info.device_model.actuator:
            raise DeviceError(f"a {schedule.actuator} schedule cannot run on {info.model}")
        refusals = schedule_refusals(
            schedule,
            model=info.model,
            hardware_max_level=info.hardware_max_level,
            ramp_limit_per_s=info.ramp_limit_per_s,
        )
        if refusals:
            raise PlanRefused(refusals)
        requests = schedule_load_requests(schedule)
        try:
            for request in requests:
                await self._request(request)
        except RequestTimeout as lost:
            log.info("%s: %s; loading again from the start", self.url, lost)
            for request in requests:
                await self._request(request)

    async def start(self) -> float:
        """Start the loaded schedule; returns the host monotonic time the device accepted it."""
        await self._settled(Start(), FirmwareState.RUNNING)
        return time.monotonic()

    async def pause(self) -> None:
        await self._settled(Pause(), FirmwareState.PAUSED)

    async def resume(self) -> None:
        await self._settled(Resume(), FirmwareState.RUNNING)

    async def stop(self) -> None:
        await self._request(Stop())

    async def estop(self) -> None:
        """Vent now. Pre-encoded and sent ahead of anything queued; tried once more as a
        whole if no answer came."""
        try:
            await self._link.request(Estop(), deadline_s=self._timeout)
        except RequestTimeout:
            await self._link.request(Estop(), deadline_s=self._timeout)

    async def heartbeat(self) -> None:
        await self._request(Heartbeat())

    async def status(self) -> StatusResponse:
        status = await self._request(Status())
        assert isinstance(status, StatusResponse)
        return status

    def stream(self) -> AsyncIterator[Telemetry | Event]:
        """Telemetry and events as they arrive; raises DeviceDisconnected when the link drops."""
        return self._link.stream()

    def subscribe(self, sink: Sink) -> Callable[[], None]:
        """Call `sink` with every sample and event as it is decoded (None: the link is gone),
        with no queue in between; returns the unsubscribe function. `sink` must not block."""
        return self._link.subscribe(sink)

    async def telemetry(self) -> AsyncIterator[Telemetry]:
        async for item in self.stream():
            if isinstance(item, Telemetry):
                yield item

    async def _heartbeat_loop(self, interval_s: float) -> None:
        """A heartbeat a second; a link that answers none of SILENT_AFTER in a row is silent
        (a band that lost power says nothing), so it is closed: whoever keeps the band
        reconnects instead of waiting on a link that will never speak again."""
        misses = 0
        while self._link.connected:
            try:
                await self._exchange(Heartbeat())
                misses = 0
            except DeviceDisconnected:
                return
            except RequestTimeout as exc:
                misses += 1
                log.warning("%s: heartbeat failed: %s", self.url, exc)
                if misses >= SILENT_AFTER:
                    await self._link.close(f"no answer to {misses} heartbeats: the link is silent")
                    return
            except DeviceError as exc:
                log.warning("%s: heartbeat failed: %s", self.url, exc)
            await asyncio.sleep(interval_s)


def connect(url: str, **options: Any) -> Device:
    """A Device for a URL (sim://, serial://, tcp://, ble://) or a paired band's alias.

    Open it with `async with`.
    """
    return Device(open_device_transport(url), **options)

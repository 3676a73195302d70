"""One band behind the gateway: its link, its published state, and the session it runs.

The agent keeps the band connected (and so heartbeated) for as long as the bridge runs,
whether or not the broker is reachable, reconnects it when the link drops, and runs at most
one session on it. Remotely started sessions carry a time limit and stop when the broker
has been gone for the grace period; local ones only stop when someone says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from acudevice.bridge.backoff import Backoff
from acudevice.bridge.lending import GatewayDevice
from acudevice.bridge.payloads import EventKind, EventPayload, StatePayload, TelemetryPayload
from acudevice.bridge.telemetry import TelemetryBatcher
from acudevice.device import Device, DeviceDisconnected, DeviceError
from acudevice.device.addresses import open_device_transport
from acudevice.plan.program import Program
from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import FaultRaised, Telemetry, VentFinished
from acudevice.session.intensity import full_intensity, percent_of
from acudevice.session.model import SessionRefused, SessionResult, SessionView
from acudevice.session.runner import Session
from acudevice.transport import TransportError

log = logging.getLogger("acudevice.bridge")

Origin = Literal["local", "remote"]
LEVEL_SCALE = 1000.0  # Pa -> kPa, permille -> fraction
STATE_PERIOD_S = 1.0
BAND_PERIOD_S = 0.1  # a band's own telemetry period while running


class Outlet(Protocol):
    """Where an agent sends what it has to say; the bridge decides if it reaches the broker."""

    def publish(
        self, topic_leaf: str, band: str, payload: str, *, qos: int, retain: bool
    ) -> None: ...

    def event(self, payload: EventPayload) -> None: ...

    def band_connected(self, band: str) -> None: ...


class StartRefused(Exception):
    """A start the agent will not (or could not) carry out; the reason is for the reply."""


@dataclass
class AgentSettings:
    telemetry_hz: float = 1.0
    broker_grace_s: float = 10.0
    remote_max_s: float = 3600.0
    make_session: Callable[[Program, GatewayDevice], Session] | None = None
    connecting: asyncio.Semaphore | None = None
    """Shared by a gateway's agents: a fleet connects a few bands at a time, not all at once."""
    batcher: TelemetryBatcher | None = None
    """The gateway's telemetry batches: every sample goes in (acudevice/bridge/telemetry.py)."""


class BandAgent:
    def __init__(self, band: str, url: str, outlet: Outlet, settings: AgentSettings) -> None:
        self.band = band
        self.url = url
        self.outlet = outlet
        self.settings = settings
        self.device: GatewayDevice | None = None
        self.session: Session | None = None
        self.origin: Origin | None = None
        self.program: Program | None = None
        self._session_task: asyncio.Task[SessionResult] | None = None
        self._guards: list[asyncio.Task[None]] = []
        self._last: Telemetry | None = None
        self._view: SessionView | None = None
        self._cap_seen: int | None = None
        self._next_telemetry = 0.0
        self._last_state = 0.0
        self._state_later: asyncio.TimerHandle | None = None
        self._grace_task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.broker_up = False

    # ---------------------------------------------------------------- the link

    async def run(self, backoff: Backoff | None = None) -> None:
        """Keep the band connected until cancelled; on cancel, stop any session and let go."""
        backoff = backoff or Backoff(0.5, 30.0)
        try:
            while True:
                device = None
                try:
                    async with self.settings.connecting or contextlib.nullcontext():
                        device = GatewayDevice(open_device_transport(self.url))
                        await device.open()
                except (DeviceError, TransportError) as exc:
                    log.warning("%s: cannot connect to %s: %s", self.band, self.url, exc)
                    if device is not None:
                        await device.shutdown()
                    await asyncio.sleep(backoff.delay())
                    continue
                backoff.reset()
                await self._serve(device)
        finally:
            await self._end_session()
            if self.device is not None:
                await self.device.shutdown()

    async def _serve(self, device: GatewayDevice) -> None:
        self.device = device
        self.connected.set()
        self.availability()
        self.outlet.band_connected(self.band)
        self._event("band-connected", detail=f"{device.info.model} at {self.url}")
        self.publish_state()
        try:
            async for item in device.stream():
                if isinstance(item, Telemetry):
                    self._telemetry(item)
                elif isinstance(item, FaultRaised):
                    self._event("fault", detail=f"device fault {item.fault.name}")
                elif isinstance(item, VentFinished):
                    self._event("vent", detail=f"vented in {item.duration_ms} ms")
        except DeviceDisconnected as exc:
            self._event("band-lost", detail=str(exc))
        finally:
            self.connected.clear()
            self.device = None
            self.availability()
            await device.shutdown(vent=True)

    def availability(self) -> None:
        online = "online" if self.device is not None else "offline"
        self.outlet.publish("availability", self.band, online, qos=1, retain=True)

    # ---------------------------------------------------------------- publishing

    def _telemetry(self, sample: Telemetry) -> None:
        self._last = sample
        if self.settings.batcher is not None:
            self.settings.batcher.add(self.band, sample)
        now = time.monotonic()
        period = 1.0 / self.settings.telemetry_hz
        # Due times advance by the period, with half a band period of slack for jitter, so
        # 10 Hz from a 10 Hz band passes every sample and 2 Hz passes every fifth.
        if now >= self._next_telemetry - BAND_PERIOD_S / 2:
            self._next_telemetry = max(self._next_telemetry + period, now - period / 2)
            payload = TelemetryPayload(
                t_ms=sample.t_ms,
                measured=sample.measured_level / LEVEL_SCALE,
                target=sample.target_level / LEVEL_SCALE,
                state=FirmwareState(sample.state).name,
                segment=sample.segment_index,
                battery_percent=sample.battery_percent,
                ts=time.time(),
            )
            self.outlet.publish(
                "telemetry", self.band, payload.model_dump_json(), qos=0, retain=False
            )
        self.publish_state()

    def publish_state(self) -> None:
        """Retained state, at most once a second; a change in between goes out at the next slot."""
        now = time.monotonic()
        wait = self._last_state + STATE_PERIOD_S - now
        if wait > 0:
            if self._state_later is None:
                loop = asyncio.get_running_loop()
                self._state_later = loop.call_later(wait, self._state_due)
            return
        self._last_state = now
        self.outlet.publish("state", self.band, self.state().model_dump_json(), qos=0, retain=True)

    def _state_due(self) -> None:
        self._state_later = None
        self.publish_state()

    def state(self) -> StatePayload:
        device, sample, view = self.device, self._last, self._view
        info = device.info if device is not None else None
        running = self.session is not None
        session: Literal["idle", "running", "paused", "stopping"] = "idle"
        if running:
            session = "paused" if view is not None and view.paused else "running"
        return StatePayload(
            model=info.model if info else None,
            firmware=info.firmware_version if info else None,
            actuator=info.device_model.actuator if info else None,
            unit=("kPa" if info.device_model.actuator == "pressure" else "fraction")
            if info
            else None,
            battery_percent=sample.battery_percent
            if sample
            else (info.battery_percent if info else None),
            device_state=FirmwareState(sample.state).name if sample else None,
            session=session,
            origin=self.origin if running else None,
            program=self.program.name if running and self.program else None,
            phase=view.phase if running and view else None,
            measured=sample.measured_level / LEVEL_SCALE if sample else None,
            target=sample.target_level / LEVEL_SCALE if sample else None,
            cap=view.cap_level / LEVEL_SCALE if running and view else None,
            intensity_percent=self._intensity_percent(view) if running and view else None,
            ts=time.time(),
        )

    def _intensity_percent(self, view: SessionView) -> int | None:
        verdict = self.session.verdict if self.session is not None else None
        if verdict is None or verdict.limits is None:
            return None
        return percent_of(view.cap_level, full_intensity(verdict))

    def _event(self, kind: EventKind, **fields: str | None) -> None:
        self.outlet.event(EventPayload(event=kind, band=self.band, ts=time.time(), **fields))

    # ---------------------------------------------------------------- sessions

    @property
    def busy(self) -> bool:
        return self.session is not None

    async def start(self, program: Program, origin: Origin, request_id: str | None = None) -> None:
        """Start `program`; returns once the band accepted START, raises StartRefused otherwise."""
        device = self.device
        if device is None:
            raise StartRefused(f"band {self.band} is not connected")
        if self.session is not None:
            raise StartRefused(
                f"band {self.band} is already running {self.program.name if self.program else 'a session'}"
            )
        status = await device.status()
        if status.state != FirmwareState.IDLE:
            raise StartRefused(f"band {self.band} is not idle (it is {status.state.name})")
        make = self.settings.make_session
        assert make is not None, "the bridge sets make_session"
        device.started.clear()
        device.lent = True
        session = make(program, device)
        session.on_update = self._on_view
        self.session, self.origin, self.program = session, origin, program
        task = asyncio.create_task(session.run(), name=f"acudevice-bridge-session-{self.band}")
        task.add_done_callback(_retrieve)  # a failure is reported by _finished or start, not lost
        self._session_task = task
        started = asyncio.create_task(device.started.wait())
        try:
            await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if task.done():
            self._clear_session()
            reason = _reason(task)
            self._event(
                "session-refused",
                program=program.name,
                origin=origin,
                detail=reason,
                request_id=request_id,
            )
            raise StartRefused(reason)
        self._event("session-started", program=program.name, origin=origin, request_id=request_id)
        if origin == "remote":
            self._guards.append(asyncio.create_task(self._time_limit(session)))
            if not self.broker_up:
                self.broker_lost()
        task.add_done_callback(lambda t: self._finished(t, program, origin))
        self.publish_state()

    def _finished(
        self, task: asyncio.Task[SessionResult], program: Program, origin: Origin
    ) -> None:
        detail: str | None
        if task.cancelled():
            outcome, detail = "stopped", "the bridge shut down"
        elif task.exception() is not None:
            outcome, detail = "faulted", str(task.exception())
        else:
            result = task.result()
            outcome, detail = result.outcome, result.detail
        self._clear_session()
        self._event(
            "session-finished", program=program.name, origin=origin, outcome=outcome, detail=detail
        )
        self.publish_state()

    def _clear_session(self) -> None:
        for guard in [*self._guards, self._grace_task]:
            if guard is not None:
                guard.cancel()
        self._guards, self._grace_task = [], None
        if self.device is not None:
            self.device.lent = False
        self.session, self.origin, self.program, self._view = None, None, None, None
        self._cap_seen = None
        self._session_task = None

    def _on_view(self, view: SessionView) -> None:
        before = self._cap_seen if self._cap_seen is not None else view.cap_level
        self._view, self._cap_seen = view, view.cap_level  # the session mutates one view
        comfort = self.session is not None and self.session.record.comfort_level == view.cap_level
        if view.cap_level < before and comfort:  # a "too strong", not a lowered intensity
            unit = "kPa" if view.actuator == "pressure" else ""
            level = f"{view.cap_level / LEVEL_SCALE:g} {unit}".strip()
            program = self.program.name if self.program else None
            self._event("comfort", program=program, detail=f"too strong: lowered to {level}")
        self.publish_state()

    async def _time_limit(self, session: Session) -> None:
        await asyncio.sleep(self.settings.remote_max_s)
        if self.session is session:
            limit = self.settings.remote_max_s
            self._event("session-limit", detail=f"remote session reached its {limit:g} s limit")
            session.stop()

    # ---------------------------------------------------------------- broker up and down

    def broker_lost(self) -> None:
        self.broker_up = False
        if self.session is not None and self.origin == "remote" and self._grace_task is None:
            self._grace_task = asyncio.create_task(self._grace(self.session))

    def broker_back(self) -> None:
        self.broker_up = True
        if self._grace_task is not None:
            self._grace_task.cancel()
            self._grace_task = None

    async def _grace(self, session: Session) -> None:
        await asyncio.sleep(self.settings.broker_grace_s)
        if self.session is session and not self.broker_up:
            self._event(
                "broker-outage",
                program=self.program.name if self.program else None,
                origin="remote",
                detail=f"broker unreachable for {self.settings.broker_grace_s:g} s: stopped the remotely started session",
            )
            session.stop()

    # ---------------------------------------------------------------- commands

    async def stop(self, *, emergency: bool = False) -> str:
        """Stop (or vent now); idempotent: stopping an idle band is fine."""
        device, session, task = self.device, self.session, self._session_task
        if emergency and device is not None:
            await device.estop()
        if session is not None and task is not None:
            session.command("estop" if emergency else "stop")
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(30):
                    await asyncio.shield(task)
            return "vented" if emergency else "stopped"
        if device is None:
            return "band not connected; nothing to stop"
        if not emergency and (await device.status()).state in (
            FirmwareState.RUNNING,
            FirmwareState.PAUSED,
            FirmwareState.LOADED,
        ):
            await device.stop()
            return "stopped"
        return "vented" if emergency else "nothing running"

    def session_command(self, verb: Literal["pause", "resume", "too-strong"]) -> str | None:
        """Pass a command to the running session; the refusal reason when there is none."""
        if self.session is None:
            return f"no session is running on band {self.band}"
        self.session.command(verb)
        return None

    async def lower_intensity(self, percent: int) -> str | None:
        """Lower the running session to `percent` of full intensity; the refusal reason if not."""
        if self.session is None:
            return f"no session is running on band {self.band}"
        return await self.session.lower_intensity(percent)

    async def _end_session(self) -> None:
        task = self._session_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _retrieve(task: asyncio.Task[SessionResult]) -> None:
    if not task.cancelled():
        task.exception()


def _reason(task: asyncio.Task[SessionResult]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if isinstance(exc, SessionRefused):
        return str(exc)
    if exc is None:
        result = task.result()
        return f"ended before starting: {result.outcome} {result.detail or ''}".strip()
    return str(exc)


def lend(device: GatewayDevice) -> Callable[[str], Device]:
    """A `connect_fn` for Session that hands it the agent's open device."""
    return lambda _url: device

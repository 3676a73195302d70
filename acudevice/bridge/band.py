"""One band behind the gateway: kept connected, its state and telemetry published, one session.

The agent's keeper keeps the band connected (and so heartbeated) for as long as the bridge
runs, whether or not the broker is reachable; its slot runs at most one session on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from acudevice.bridge.band_session import (
    Origin,
    SessionMaker,
    SessionSlot,
    SlotSettings,
    StartRefused,
)
from acudevice.bridge.payloads import EventKind, EventPayload, StatePayload, TelemetryPayload
from acudevice.bridge.telemetry import TelemetryBatcher
from acudevice.device import Device
from acudevice.device.keeper import Keeper, KeeperState, ReconnectPolicy
from acudevice.plan.program import Program
from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import (
    Event,
    FaultRaised,
    Telemetry,
    TelemetryBatch,
    VentFinished,
)
from acudevice.session.events import SessionState
from acudevice.session.model import Command

__all__ = ["AgentSettings", "BandAgent", "Origin", "Outlet", "StartRefused"]

log = logging.getLogger("acudevice.bridge")

LEVEL_SCALE = 1000.0  # Pa -> kPa, permille -> fraction
STATE_PERIOD_S = 1.0
BAND_PERIOD_S = 0.1  # a band's own telemetry period while running
SessionKind = Literal["idle", "running", "paused", "stopping", "venting"]
GATEWAY_RECONNECT = ReconnectPolicy(initial_s=0.5, maximum_s=30.0)


class Outlet(Protocol):
    """Where an agent sends what it has to say; the bridge decides if it reaches the broker."""

    def publish(
        self, topic_leaf: str, band: str, payload: str, *, qos: int, retain: bool
    ) -> None: ...

    def event(self, payload: EventPayload) -> None: ...

    def band_connected(self, band: str) -> None: ...


@dataclass
class AgentSettings:
    make_session: SessionMaker
    telemetry_hz: float = 1.0
    broker_grace_s: float = 10.0
    remote_max_s: float = 3600.0
    reconnect: ReconnectPolicy = GATEWAY_RECONNECT
    """A gateway's bands are kept for ever: a band switched off comes back when it is on."""
    connecting: asyncio.Semaphore | None = None
    """Shared by a gateway's agents: a fleet connects a few bands at a time, not all at once."""
    batcher: TelemetryBatcher | None = None
    """The gateway's telemetry batches: every sample goes in (acudevice/bridge/telemetry.py)."""


class BandAgent:
    def __init__(
        self,
        band: str,
        url: str,
        outlet: Outlet,
        settings: AgentSettings,
        participant: str | None = None,
    ) -> None:
        self.band = band
        self.url = url
        self.participant = participant
        """Who wears the band (a study pseudonym), shown in its state and events."""
        self.outlet = outlet
        self.settings = settings
        self.keeper = Keeper(url, policy=settings.reconnect, connecting=settings.connecting)
        self.slot = SessionSlot(
            self,
            self.keeper,
            SlotSettings(settings.make_session, settings.broker_grace_s, settings.remote_max_s),
        )
        self.connected = asyncio.Event()
        self._device: Device | None = None
        self._unsubscribe_device: Callable[[], None] = _nothing
        self._last: Telemetry | None = None
        self._next_telemetry = 0.0
        self._last_state = 0.0
        self._state_later: asyncio.TimerHandle | None = None
        self._published_session: SessionKind | None = None

    @property
    def device(self) -> Device | None:
        return self._device

    @property
    def session(self) -> object | None:
        """The running session, if any (tests and logs; commands go through the agent)."""
        return self.slot.session

    @property
    def busy(self) -> bool:
        return self.slot.busy

    # ---------------------------------------------------------------- the link

    async def run(self) -> None:
        """Keep the band until cancelled; then end any session (it vents) and let go."""
        unsubscribe = self.keeper.subscribe(self._keeper_changed)
        try:
            async with self.keeper:
                try:
                    await asyncio.Event().wait()  # until cancelled: the keeper does the work
                finally:
                    await self.slot.shut_down("the bridge shut down")
        finally:
            unsubscribe()

    async def shut_down(self, reason: str = "the bridge shut down") -> None:
        await self.slot.shut_down(reason)

    def _keeper_changed(self, state: KeeperState, why: str | None) -> None:
        if state is KeeperState.READY:
            device = self.keeper.device
            self._device = device
            self._unsubscribe_device = device.subscribe(self._from_band)
            self.connected.set()
            self.availability()
            self.outlet.band_connected(self.band)
            self.event("band-connected", detail=f"{device.info.model} at {self.url}")
            self.publish_state()
        elif self._device is not None:
            self._unsubscribe_device()
            self._device = None
            self.connected.clear()
            self.availability()
            self.event("band-lost", detail=why)
            self.publish_state()

    def _from_band(self, item: Telemetry | TelemetryBatch | Event | None) -> None:
        if isinstance(item, Telemetry):
            self._telemetry(item)
        elif isinstance(item, TelemetryBatch):
            for sample in item.samples:
                self._telemetry(sample)
        elif isinstance(item, FaultRaised):
            self.event("fault", detail=f"device fault {item.fault.name}")
        elif isinstance(item, VentFinished):
            self.event("vent", detail=f"vented in {item.duration_ms} ms")

    def availability(self) -> None:
        online = "online" if self._device is not None else "offline"
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

    def publish_state(self, *, at_once: bool = False) -> None:
        """Retained state, at most once a second; a change in between goes out at the next
        slot. `at_once`: if the session's state as published (running, paused, stopping,
        venting, idle) changed, it goes out now, and the next routine one a second after."""
        now = time.monotonic()
        wait = self._last_state + STATE_PERIOD_S - now
        state = self.state()
        if wait > 0 and not (at_once and state.session != self._published_session):
            if self._state_later is None:
                loop = asyncio.get_running_loop()
                self._state_later = loop.call_later(wait, self._state_due)
            return
        self._last_state, self._published_session = now, state.session
        self.outlet.publish("state", self.band, state.model_dump_json(), qos=0, retain=True)

    def _state_due(self) -> None:
        self._state_later = None
        self.publish_state()

    def state(self) -> StatePayload:
        device, sample, slot = self._device, self._last, self.slot
        info = device.info if device is not None else None
        view = slot.view if slot.session is not None else None
        session: SessionKind = "idle"
        if view is not None:
            session = "running"
            if view.paused:
                session = "paused"
            elif view.state is SessionState.VENTING:
                session = "venting"
            elif view.state in (SessionState.STOPPING, SessionState.ENDED):
                session = "stopping"
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
            origin=slot.origin if view else None,
            program=slot.program.name if view and slot.program else None,
            phase=view.phase if view else None,
            measured=sample.measured_level / LEVEL_SCALE if sample else None,
            target=sample.target_level / LEVEL_SCALE if sample else None,
            cap=view.cap_level / LEVEL_SCALE if view and view.cap_level else None,
            intensity_percent=view.intensity_percent if view and view.full_level else None,
            participant=self.participant,
            ts=time.time(),
        )

    def event(self, kind: EventKind, **fields: str | None) -> None:
        self.outlet.event(
            EventPayload(
                event=kind, band=self.band, participant=self.participant, ts=time.time(), **fields
            )
        )

    # ---------------------------------------------------------------- commands

    async def start(self, program: Program, origin: Origin, request_id: str | None = None) -> None:
        await self.slot.start(program, origin, request_id)

    async def stop(self, *, emergency: bool = False) -> str:
        """Stop (or vent now); idempotent: stopping an idle band is fine."""
        device = self._device
        if emergency and device is not None:
            await device.estop()  # at once, before the session hears of it
        answer = await self.slot.stop(emergency=emergency)
        if answer is not None:
            return answer
        if device is None:
            return "band not connected; nothing to stop"
        if emergency:
            return "vented"
        if (await device.status()).state in (
            FirmwareState.RUNNING,
            FirmwareState.PAUSED,
            FirmwareState.LOADED,
        ):
            await device.leave_stopped()
            return "stopped"
        return "nothing running"

    def session_command(self, verb: Command) -> str | None:
        """Pass a command to the running session; the refusal reason when it cannot."""
        return self.slot.command(verb)

    async def lower_intensity(self, percent: int) -> str | None:
        """Lower the running session to `percent` of full intensity; the refusal reason if not."""
        return await self.slot.lower_intensity(percent)

    def broker_lost(self) -> None:
        self.slot.broker_lost()

    def broker_back(self) -> None:
        self.slot.broker_back()


def _nothing() -> None:
    pass

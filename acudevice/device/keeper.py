"""`Keeper`: keeps one band connected, lends it to one user at a time, leaves it stopped.

    async with Keeper("sim://") as keeper:
        await keeper.wait_ready(10)
        async with keeper.lease() as band:
            await band.start()
        # leaving the lease stopped the band (ESTOP after an error or a cancel); the link stays

One object owns "keep a band connected" (aioesphomeapi's ReconnectLogic): one state with one
setter, listeners told of every change, one reconnect policy. A fresh `Device` is opened for
every connection (STYLE: callbacks never outlive their link), so a lease holder asks
`keeper.device` again after a loss. A band lost during a lease is left to its watchdog: the
disconnect path writes nothing. If the keeper has it back before the watchdog vented it, the
keeper vents it (ESTOP) before it says READY: the new link's heartbeats must not keep a
program running that nobody watches any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from acudevice.device.backoff import Backoff
from acudevice.device.device import Device, connect
from acudevice.device.errors import DeviceDisconnected, DeviceError
from acudevice.device.link import reap
from acudevice.errors import TransportError
from acudevice.protocol import FirmwareState

log = logging.getLogger("acudevice.device")
_MOVING = (FirmwareState.RUNNING, FirmwareState.PAUSED)


class KeeperState(enum.Enum):
    CONNECTING = "connecting"
    """An attempt to open the link is under way."""
    READY = "ready"
    LOST = "lost"
    """Not connected, and waiting before the next attempt."""
    CLOSED = "closed"
    """Closed by its owner, or given up (`Keeper.gave_up` says why)."""


class BandBusy(DeviceError):
    """The band is leased to someone else: one user at a time."""


class KeeperClosed(DeviceDisconnected):
    """The keeper was closed or gave up reconnecting; the message carries the last error."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a keeper (re)connects: jittered exponential backoff with budgets per band."""

    initial_s: float = 0.5
    maximum_s: float = 30.0
    first_attempts: int | None = None
    """Attempts before the first connection; None: until closed (a gateway's band may be
    switched on later). A one-off run passes 1, so a wrong URL fails at once."""
    attempts_per_loss: int | None = None
    """Attempts after each loss; None: until closed."""

    def __post_init__(self) -> None:
        for name in ("first_attempts", "attempts_per_loss"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None), not {value}")
        if not 0 < self.initial_s <= self.maximum_s:
            raise ValueError("backoff needs 0 < initial_s <= maximum_s")


StateListener = Callable[[KeeperState, str | None], None]
"""Called with the new state and why (the error or the loss), in the keeper's task."""


class Keeper:
    def __init__(
        self,
        url: str,
        *,
        policy: ReconnectPolicy | None = None,
        connecting: asyncio.Semaphore | None = None,
        connect: Callable[[str], Device] = connect,
        rng: random.Random | None = None,
    ) -> None:
        """`connecting` is shared by a gateway's keepers, so it opens a few radios at a time."""
        self.url = url
        self.policy = policy or ReconnectPolicy()
        self._connecting = connecting
        self._connect = connect
        self._rng = rng
        self._state = KeeperState.LOST
        self._device: Device | None = None
        self._listeners: list[StateListener] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._leased = False
        self._orphaned = False
        """The link was lost during a lease: the band may still run what the lessee started."""
        self.last_error: Exception | None = None
        self.gave_up: str | None = None
        """Why the keeper stopped trying (its budget ran out), or None."""
        self.connections = 0

    # ---------------------------------------------------------------- state

    @property
    def state(self) -> KeeperState:
        return self._state

    def _set_state(self, state: KeeperState, why: str | None = None) -> None:
        self._state = state
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in list(self._listeners):
            try:
                listener(state, why)
            except Exception:  # a listener's bug must not stop the band being kept
                log.exception("keeper listener failed")

    def subscribe(self, listener: StateListener) -> Callable[[], None]:
        """Be told of every state change; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    @property
    def ready(self) -> bool:
        """READY with its link still up (a loss is seen here before the keeper's task runs)."""
        device = self._device
        return self._state is KeeperState.READY and device is not None and device.connected

    @property
    def device(self) -> Device:
        """The band on the current connection; raises unless `ready`."""
        if not self.ready:
            raise self._not_ready()
        assert self._device is not None
        return self._device

    async def drop(self, why: str) -> None:
        """Give up the current link (one that went silent) and connect afresh; writes nothing."""
        device = self._device
        if device is not None and device.connected:
            log.info("%s: dropping the link: %s", self.url, why)
            await device.link.close(why)

    @property
    def leased(self) -> bool:
        return self._leased

    def _not_ready(self) -> DeviceDisconnected:
        if self._state is KeeperState.CLOSED:
            return KeeperClosed(f"{self.url}: {self.gave_up or 'the keeper is closed'}")
        return DeviceDisconnected(f"{self.url} is not connected ({self._state.value})")

    async def wait_ready(self, timeout_s: float | None = None) -> Device:
        """The band once READY; raises KeeperClosed if the keeper gives up or closes first,
        DeviceDisconnected if `timeout_s` passes."""
        self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while not self.ready:
            if self._state is KeeperState.CLOSED:
                if self.connections == 0 and self.last_error is not None:
                    raise self.last_error  # never connected: the error says why, as it is
                raise self._not_ready()
            changed = self._changed
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                raise DeviceDisconnected(
                    f"{self.url}: not connected within {timeout_s:g} s ({self._state.value})"
                ) from None
        return self.device

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(vent=exc_type is not None)

    def start(self) -> None:
        """Begin keeping the band connected (idempotent; `async with` calls it)."""
        if self._task is None and self._state is not KeeperState.CLOSED:
            self._task = asyncio.create_task(self._keep(), name=f"acudevice-keeper-{self.url}")
            self._task.add_done_callback(self._kept)

    def _kept(self, task: asyncio.Task[None]) -> None:
        """A keeper whose task died of a bug says so, rather than leave waiters for ever."""
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: keeper failed", self.url, exc_info=task.exception())
            self.gave_up = f"the keeper failed: {task.exception()!r}"
            self._task = None
            self._set_state(KeeperState.CLOSED, self.gave_up)

    async def close(self, *, vent: bool = False) -> None:
        """Leave the band stopped (ESTOP with `vent`), stop reconnecting, close the link."""
        task, self._task = self._task, None
        if task is not None:
            await reap([task])
        device, self._device = self._device, None
        if device is not None:
            await device.close(vent=vent)
        if self._state is not KeeperState.CLOSED:
            self._set_state(KeeperState.CLOSED, self.gave_up)

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Device]:
        """The band, to one user at a time; leaving the block leaves it stopped: STOP, or
        ESTOP after an error or a cancel. The link stays. Raises BandBusy or, unless READY,
        DeviceDisconnected."""
        if self._leased:
            raise BandBusy(f"{self.url} is in use by another session")
        device = self.device
        self._leased = True
        vent = True
        try:
            yield device
            vent = False
        finally:
            self._leased = False
            await self._leave_stopped(vent=vent)

    async def _leave_stopped(self, *, vent: bool) -> None:
        """On the current connection, best effort; a lost band is left to its watchdog, and
        vented by the keeper if it gets the band back first (a lessee may leave before the
        keeper's task has seen the loss, so the lease's end says so too)."""
        device = self._device
        if not self.ready or device is None:
            self._orphaned = True
            return
        with contextlib.suppress(DeviceError):
            # Shielded: a cancel that ends the lease must not also cancel the ESTOP it sends.
            await asyncio.shield(device.leave_stopped(vent=vent))
        if not device.connected:  # lost on the way: whether the band heard it is unknown
            self._orphaned = True

    # ---------------------------------------------------------------- keeping

    async def _vent_orphan(self, device: Device) -> None:
        """On a new link to a band lost during a lease: vent it if it still runs that lease's
        program (its watchdog has not yet), before anyone can heartbeat it along."""
        try:
            if (await device.status()).state in _MOVING:
                log.warning("%s: back before its watchdog vented it; venting it now", self.url)
                await device.estop()
        except BaseException:
            await device.close(vent=True)
            raise
        self._orphaned = False

    async def _keep(self) -> None:
        policy = self.policy
        backoff = Backoff(policy.initial_s, policy.maximum_s, self._rng)
        budget = policy.first_attempts
        failures = 0
        while True:
            self._set_state(KeeperState.CONNECTING)
            try:
                device = self._connect(self.url)  # a bad URL or alias fails here
                async with self._connecting or contextlib.nullcontext():
                    await device.open()
                if self._orphaned:
                    await self._vent_orphan(device)
            except (DeviceError, TransportError) as exc:
                failures += 1
                self.last_error = exc
                if budget is not None and failures >= budget:
                    self.gave_up = f"gave up after {failures} attempt(s): {exc}"
                    self._task = None
                    self._set_state(KeeperState.CLOSED, self.gave_up)
                    return
                delay = backoff.delay()
                log.info("%s: cannot connect (%s); next try in %.1f s", self.url, exc, delay)
                self._set_state(KeeperState.LOST, str(exc))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            failures, budget = 0, policy.attempts_per_loss
            self._device = device
            self.connections += 1
            self._set_state(KeeperState.READY)
            # A cancel here is close(): it leaves this device stopped and closes it itself.
            await device.wait_disconnected()
            self._orphaned = self._orphaned or self._leased
            self._device = None
            await device.close()  # the link is gone: this writes nothing
            why = device.link.close_reason or "link lost"
            log.warning("%s: %s", self.url, why)
            self._set_state(KeeperState.LOST, why)
            await asyncio.sleep(backoff.delay())

"""The link-fault campaign: bands run sessions through keepers while their links are cut.

N simulated bands (`simulator.link_bands`) on one transport each run nausea-relief at speed
20, back to back, through a `Keeper` with the gateway's policy (reconnect for ever). K cuts in
all, planned from the seed (which band, which failure, how long into a running session, how
long the band stays out of reach), are made from the band's side, one at a time per band, the
ways links really fail:

- ble: a supervision timeout (the link is gone, the band advertises again at once); out of
  range (connects time out until it advertises again); a GATT write never answered (the
  host's 3 s write deadline gives the link up);
- pty: the USB adapter hung up (reads fail with EIO, the by-id name is gone until it is
  back); a silent line (nothing either way while both ends believe in the link);
- tcp: a reset (RST); the bridge refusing connections for a while.

Each cut ends one of two ways: the session resumes on the band (`recovered`: a `Running`
after the `LinkLost`), or it ends `link-lost` and the simulator shows the band vented
(`vented`). Anything else is `neither`; a cut not settled within `HANG_S` is `hung`. The
journal of every session is checked against its `SessionResult`. A front end of the
simulator: it drives the host's Session and Keeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from acudevice.bridge.band import GATEWAY_RECONNECT
from acudevice.device.keeper import Keeper
from acudevice.device.stopping import vent_and_clear
from acudevice.errors import AcuDeviceError
from acudevice.plan.library import ProgramLibrary
from acudevice.protocol import EventCode, FirmwareState, Kind, Opcode, Reason, decode
from acudevice.protocol.messages import VentStarted
from acudevice.session.events import Ended, LinkLost, Running, SessionEvent
from acudevice.session.model import SessionResult
from acudevice.session.runner import LinkPolicy, Session
from acudevice.store import Journal
from simulator.link_bands import ServedBand, served_bands
from simulator.link_cuts import Cut, Transport, make_cut, plan

PROGRAM = "nausea-relief"
SIM_URL = "sim://?speed=20"
LINK_POLICY = LinkPolicy(reopen_within_s=5.0)
"""Back within 5 s of a loss, or the session ends `link-lost` (the band left to its watchdog)."""
HANG_S = 60.0
"""A cut not settled this long after the band is back in reach is a hang."""
VENTED_WITHIN_S = 10.0
"""After a session ends `link-lost`: the band must be vented by then (its watchdog: 3 s)."""
Verdict = Literal["recovered", "vented", "neither", "hung"]


@dataclass
class CutResult:
    cut: Cut
    verdict: Verdict
    detail: str
    recovery_s: float | None = None
    """Cut to `Running` again (recovered)."""
    vent_s: float | None = None
    """From the last frame the band heard on the cut link to its vent."""
    vent_reason: str | None = None


@dataclass
class SessionCheck:
    session_id: int | None
    outcome: str
    journal_ok: bool
    detail: str
    losses: int = 0


@dataclass
class CampaignResult:
    transport: str
    bands: int
    seed: int
    cuts: list[CutResult] = field(default_factory=list)
    sessions: list[SessionCheck] = field(default_factory=list)
    wall_s: float = 0.0


class _Tap:
    """What the band heard (requests) and did (vents), on the loop's clock."""

    def __init__(self, band: ServedBand) -> None:
        self.sim = band.sim
        self.requests: deque[tuple[float, int]] = deque(maxlen=8192)
        """(loop time, opcode) of every request the firmware handled, newest last."""
        self.vents: list[tuple[float, str]] = []
        loop = asyncio.get_running_loop()
        send = band.sim.clock.send

        def tapped(payload: bytes) -> None:
            if payload[1] == Kind.EVENT and payload[4] == EventCode.VENT_STARTED:
                vent = decode(payload).message
                assert isinstance(vent, VentStarted)
                self.vents.append((loop.time(), Reason(vent.reason).name))
            send(payload)

        def heard(payload: bytes) -> None:
            if len(payload) > 4 and payload[1] == Kind.REQUEST:
                self.requests.append((loop.time(), payload[4]))

        band.sim.clock.send = tapped
        band.sim.device.request_observer = heard

    @property
    def running(self) -> bool:
        return self.sim.device.firmware.state is FirmwareState.RUNNING

    @property
    def vented(self) -> bool:
        device = self.sim.device
        at_rest = device.firmware.state in (FirmwareState.IDLE, FirmwareState.FAULT)
        return at_rest and device.plant.level < device.model.vented_level

    def vent_after(self, cut_at: float) -> tuple[float, str] | None:
        """The first vent after a cut, and how long before it the band last heard the host
        on the link that was cut (a new connection starts with HELLO)."""
        vent = next(((t, why) for t, why in self.vents if t >= cut_at), None)
        if vent is None:
            return None
        vent_at, reason = vent
        hellos = (t for t, op in self.requests if cut_at <= t <= vent_at and op == Opcode.HELLO)
        boundary = min(hellos, default=vent_at)
        heard = [t for t, _ in self.requests if t < boundary]
        return (vent_at - heard[-1] if heard else float("nan")), reason


class _Follower:
    """One session's events with their loop times, and a way to wait on them."""

    def __init__(self, session: Session) -> None:
        self.events: list[tuple[float, SessionEvent]] = []
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        session.subscribe(self)

    def __call__(self, event: SessionEvent) -> None:
        self.events.append((self._loop.time(), event))
        self._changed.set()

    def first(self, kind: type, since: float) -> float | None:
        return next((t for t, e in self.events if t >= since and isinstance(e, kind)), None)

    @property
    def result(self) -> SessionResult | None:
        return next((e.result for _, e in self.events if isinstance(e, Ended)), None)

    @property
    def running(self) -> bool:
        """Not ended, and its last `Running` is later than its last loss."""
        if self.result is not None:
            return False
        last_running = max((t for t, e in self.events if isinstance(e, Running)), default=None)
        last_loss = max((t for t, e in self.events if isinstance(e, LinkLost)), default=None)
        return last_running is not None and (last_loss is None or last_running >= last_loss)

    @property
    def losses(self) -> int:
        return sum(1 for _, e in self.events if isinstance(e, LinkLost))

    async def until_running(self, within_s: float) -> None:
        """Until it runs or has ended, or `within_s` has passed."""
        await self.until(lambda: self.running or self.result is not None, within_s)

    async def until_ended(self, within_s: float) -> None:
        await self.until(lambda: self.result is not None, within_s)

    async def until(self, predicate: Callable[[], bool], within_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        return predicate()


class _BandRun:
    """One band: sessions back to back, its share of the cuts, each judged."""

    def __init__(
        self,
        band: ServedBand,
        keeper: Keeper,
        journal: Journal,
        result: CampaignResult,
        on_cut: Callable[[CutResult], None] | None,
    ) -> None:
        self.band, self.keeper, self.journal = band, keeper, journal
        self.result = result
        self.on_cut = on_cut
        self.tap = _Tap(band)
        self.program = ProgramLibrary().get(PROGRAM)
        self.session: Session | None = None
        self.follower: _Follower | None = None
        self.task: asyncio.Task[SessionResult] | None = None

    async def run(self, cuts: list[Cut]) -> None:
        done = 0
        try:
            for cut in cuts:
                await self._cut_when_running(cut)
                done += 1
        except AcuDeviceError as exc:  # the band never came back: its cuts are not settled
            for cut in cuts[done:]:
                self._record(CutResult(cut, "hung", f"the band stopped running sessions: {exc}"))
        finally:
            await self._end_session()

    def _record(self, judged: CutResult) -> None:
        self.result.cuts.append(judged)
        if self.on_cut is not None:
            self.on_cut(judged)

    # ---------------------------------------------------------------- sessions

    async def _start_session(self) -> None:
        """A new session on a band at rest (a fault latched by a vent is cleared first)."""
        keeper = self.keeper
        await keeper.wait_ready(HANG_S)
        async with keeper.lease() as device:
            await vent_and_clear(device)
        self.session = Session(self.program, [keeper], journal=self.journal, link=LINK_POLICY)
        self.follower = _Follower(self.session)
        self.task = asyncio.create_task(self.session.run())

    async def _running_session(self) -> _Follower:
        """The current session once it runs (a new one if the last has ended)."""
        for _ in range(3):
            follower = self.follower
            if follower is None or follower.result is not None:
                await self._finish_session()
                await self._start_session()
                follower = self.follower
                assert follower is not None
            await follower.until_running(HANG_S)
            if follower.running:
                return follower
            if follower.result is None and self.session is not None:  # stuck before it ran
                self.session.cancel("it did not start")
            await self._finish_session()
        raise AcuDeviceError("three sessions in a row ended before they ran")

    async def _finish_session(self) -> None:
        """Wait for the session to end (it has, or was told to) and check its journal row."""
        task, follower = self.task, self.follower
        self.task = self.follower = self.session = None
        if task is None or follower is None:
            return
        try:
            async with asyncio.timeout(HANG_S):
                outcome = await task
        except TimeoutError:
            self.result.sessions.append(SessionCheck(None, "hang", False, "did not end"))
            return
        except AcuDeviceError as exc:  # run() raises only what is not a session's ending
            self.result.sessions.append(SessionCheck(None, "error", False, str(exc)))
            return
        self.result.sessions.append(self._check_journal(outcome, follower.losses))

    async def _end_session(self) -> None:
        if self.session is not None and self.task is not None and not self.task.done():
            self.session.stop("the campaign is over")
        await self._finish_session()

    def _check_journal(self, outcome: SessionResult, losses: int) -> SessionCheck:
        """The journal says what the session said: outcome, peak, a link-lost per loss."""
        sid = outcome.session_id
        if sid is None:
            return SessionCheck(None, outcome.outcome, True, outcome.detail or "", losses)
        record = self.journal.session(sid)
        journalled = sum(1 for f in self.journal.faults(sid) if f.code == "link-lost")
        problems = [
            f"{name}: journal {a!r}, session {b!r}"
            for name, a, b in (
                ("outcome", record.outcome, outcome.outcome),
                ("peak", record.peak_level, outcome.peak_level),
                ("link-lost faults", journalled, losses),
            )
            if a != b
        ]
        return SessionCheck(sid, outcome.outcome, not problems, "; ".join(problems), losses)

    # ---------------------------------------------------------------- cuts

    async def _cut_when_running(self, cut: Cut) -> None:
        while True:
            follower = await self._running_session()
            await follower.until_ended(cut.after_s)
            if follower.running and self.tap.running:
                break
        at = asyncio.get_running_loop().time()
        await make_cut(self.band, cut)
        self._record(await self._judge(cut, follower, at))

    async def _judge(self, cut: Cut, follower: _Follower, at: float) -> CutResult:
        """Recovered, vented, neither or hung; made while the band was running."""
        lost = await follower.until(
            lambda: follower.first(LinkLost, at) is not None or follower.result is not None,
            cut.hold_s + HANG_S,
        )
        lost_at = follower.first(LinkLost, at)
        if not lost:
            return CutResult(cut, "hung", "no loss seen and the session went on")
        if lost_at is None:
            end = follower.result
            return CutResult(cut, "neither", f"ended {end.outcome if end else '?'} unlost")
        settled = await follower.until(
            lambda: follower.first(Running, lost_at) is not None or follower.result is not None,
            cut.hold_s + HANG_S,
        )
        vent = self.tap.vent_after(at)
        vent_s, reason = vent if vent else (None, None)
        back_at = follower.first(Running, lost_at)
        if back_at is not None:
            return CutResult(cut, "recovered", "", back_at - at, vent_s, reason)
        end = follower.result
        if not settled or end is None:
            return CutResult(cut, "hung", "lost, and neither back nor ended")
        if end.outcome != "link-lost":
            return CutResult(cut, "neither", f"ended {end.outcome}: {end.detail}")
        await self._finish_session()
        if not await _until(lambda: self.tap.vented, VENTED_WITHIN_S):
            return CutResult(cut, "neither", "ended link-lost, but the band did not vent")
        vent = self.tap.vent_after(at)
        vent_s, reason = vent if vent else (None, None)
        return CutResult(cut, "vented", end.detail or "", None, vent_s, reason)


async def _until(predicate: Callable[[], bool], within_s: float) -> bool:
    """Poll the simulator (it has no event for "vented") until `predicate`, or time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run_link_campaign(
    transport: Transport,
    bands: int,
    disconnects: int,
    seed: int,
    folder: Path,
    *,
    on_cut: Callable[[CutResult], None] | None = None,
) -> CampaignResult:
    """Every cut judged and every session checked; journals and pty names in `folder`."""
    cuts = plan(transport, bands, disconnects, seed)
    result = CampaignResult(transport, bands, seed)
    started = time.perf_counter()
    async with (
        served_bands(transport, bands, folder, url=SIM_URL) as served,
        contextlib.AsyncExitStack() as stack,
    ):
        runs = []
        for i, band in enumerate(served):
            keeper = Keeper(band.url, policy=GATEWAY_RECONNECT, connect=band.connect)
            await stack.enter_async_context(keeper)
            journal = stack.enter_context(Journal(folder / f"band-{i}.sqlite3"))
            runs.append(_BandRun(band, keeper, journal, result, on_cut))
        await asyncio.gather(
            *(run.run([c for c in cuts if c.band == i]) for i, run in enumerate(runs))
        )
    result.wall_s = time.perf_counter() - started
    return result

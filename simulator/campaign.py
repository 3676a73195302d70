"""The safety campaign: many seeded sessions under every simulator fault, judged on TRUE level.

Each run is one shipped program on its device kind (wristband-p1 for pressure programs,
vibepad-v1 for vibration), one fault and one host action, driven through the real
`Session` path (screening, compiling, `Device`, journal) on `sim://?speed=max`. A probe on
the simulated device compares the plant's true level at every event with the cap the host
set (`SET_LIMITS`, as the host sent it, so a firmware that ignores it is caught); a lowered
cap applies once the device's vent deadline has passed, as the firmware's own over-level
rule allows. This is a front end, like a CLI: it may import `acudevice.session`; the
simulator core never does.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from acudevice.device import Device
from acudevice.device.keeper import ReconnectPolicy
from acudevice.plan.library import ProgramLibrary
from acudevice.plan.program import Program
from acudevice.protocol import Envelope, FirmwareState, SetLimits, try_decode
from acudevice.safety.profile import HealthProfile
from acudevice.session.runner import Session
from acudevice.store import Journal
from simulator.core.device import SimDevice
from simulator.loopback import SimTransport, Simulation
from simulator.options import SimOptions

MODELS = {"pressure": "wristband-p1", "vibration": "vibepad-v1"}
TOLERANCE = {"pressure": 1000, "vibration": 50}
"""The sensor tolerance of each model (Pa, permille): the margin the cap promise allows."""
FAULT_KINDS = (
    "none",
    "drop",
    "corrupt",
    "duplicate",
    "stuck-pump",
    "stuck-valve",
    "drift-up",
    "drift-down",
    "offset-up",
    "offset-down",
    "brownout",
)
ACTIONS = ("none", "comfort", "cap-lowered", "pause-storm", "host-silence")
HANG_S = 120.0
"""A session that has not ended after this much wall time is a hang."""


@dataclass(frozen=True)
class Scenario:
    program: str
    model: str
    fault: str | None
    """A simulator fault spec (`simulator.core.faults`), or None."""
    action: str
    seed: int
    link_cut_ms: int | None = None
    """Device ms at which the first link goes silent both ways (the host reconnects)."""
    kind: str = "none"
    """The campaign's fault dimension (`FAULT_KINDS`, or a spec given by `--fault`)."""

    @property
    def url(self) -> str:
        faults = () if self.fault is None else (self.fault,)
        return SimOptions(self.model, self.seed, None, faults).to_url()


@dataclass
class RunResult:
    scenario: Scenario
    outcome: str
    detail: str
    samples: int = 0
    exceedance_samples: int = 0
    worst_margin: float = float("-inf")
    """Largest true level minus the cap in force (level units); > tolerance is an exceedance."""
    vent_ms: int | None = None
    """From the first device fault to the true level under the vented threshold."""
    journal_ok: bool = True
    hang: bool = False
    slow_under_load: bool = False
    """Timed out among the concurrent runs, then ended when run again alone."""
    device_ms: int = 0
    trajectory: list[tuple[int, float, float]] = field(default_factory=list)
    """(device ms, true level, cap in force), kept only while it may be among the worst."""

    @property
    def exceeded(self) -> bool:
        return self.exceedance_samples > 0


def _fault_spec(kind: str, rng: random.Random, program_ms: int) -> str | None:
    onset = rng.randrange(0, max(program_ms, 1))
    if kind in ("none", "drop"):  # a dropped link is the campaign's own (`_CampaignLink`)
        return None
    if kind == "corrupt":
        return f"corrupt:{rng.uniform(0.005, 0.05):.3f}"
    if kind == "duplicate":
        return f"duplicate:{rng.uniform(0.01, 0.1):.3f}"
    if kind in ("stuck-pump", "stuck-valve", "brownout"):
        return f"{kind}:{onset}"
    sign = "-" if kind.endswith("down") else ""
    if kind.startswith("drift"):
        return f"drift:{sign}{rng.uniform(0.05, 4.0):.2f}"
    return f"offset:{sign}{rng.uniform(0.05, 3.0):.2f}"


def scenarios(
    runs: int,
    seed: int,
    *,
    faults: Sequence[str] | None = None,
    actions: Sequence[str] = ACTIONS,
    programs: dict[str, Program] | None = None,
) -> list[Scenario]:
    """Run i covers fault kind i, action i // kinds, program i // (kinds x actions): every
    combination once per `kinds x actions x programs` runs. `faults` given as specs (e.g.
    `ignore-limits`) replaces the fault kinds."""
    shipped = programs if programs is not None else shipped_programs()
    names = sorted(shipped)
    kinds = list(faults) if faults else list(FAULT_KINDS)
    out = []
    for i in range(runs):
        rng = random.Random(f"campaign:{seed}:{i}")
        program = shipped[names[(i // (len(kinds) * len(actions))) % len(names)]]
        kind = kinds[i % len(kinds)]
        length = program_ms(program)
        spec = _fault_spec(kind, rng, length) if kind in FAULT_KINDS else kind
        cut = rng.randrange(0, length) if kind == "drop" else None
        action = actions[(i // len(kinds)) % len(actions)]
        model = MODELS[program.actuator]
        out.append(Scenario(program.name, model, spec, action, seed + i, cut, kind))
    return out


def shipped_programs() -> dict[str, Program]:
    library = ProgramLibrary()
    return {
        name: program
        for name, (origin, program) in library.load_all().items()
        if origin == "shipped"
    }


def program_ms(program: Program) -> int:
    per_repeat = sum(p.duration_s for p in program.phases)
    total = per_repeat * program.repeats + program.rest_between_s * (program.repeats - 1)
    return round(total * 1000)


class Probe:
    """Watches one simulated device: true level against the cap in force, vent time."""

    def __init__(self, device: SimDevice, result: RunResult, keep_trajectory: bool) -> None:
        model = device.model
        self.result = result
        self.tolerance = TOLERANCE[model.actuator]
        self.grace_ms = round(model.vent_deadline_s * 1000)
        self.vented = model.vented_level
        self.cap = float(model.hardware_max_level)
        self._pending: list[tuple[int, float]] = []
        self._fault_ms: int | None = None
        self.keep = keep_trajectory
        self.actions: list[tuple[int, Callable[[], None]]] = []
        self.device = device
        device.observer = self.observe
        device.request_observer = self.received

    def received(self, payload: bytes) -> None:
        """A cap counts from when the device got it, whether or not the firmware obeys it;
        one lost on the way is the watchdog's business (the host's link is down)."""
        message = try_decode(payload)
        if isinstance(message, Envelope) and isinstance(message.message, SetLimits):
            self.cap_set(self.device.now_ms, message.message.cap_level)

    def cap_set(self, now_ms: int, cap: int) -> None:
        if cap >= self.cap:
            self.cap = float(cap)  # a raise (a new session) applies at once
            self._pending.clear()
        else:
            self._pending.append((now_ms + self.grace_ms, float(cap)))

    def observe(self, device: SimDevice) -> None:
        now, level = device.now_ms, device.plant.level
        while self._pending and self._pending[0][0] <= now:
            self.cap = min(self.cap, self._pending.pop(0)[1])
        r = self.result
        r.samples += 1
        margin = level - self.cap
        if margin > r.worst_margin:
            r.worst_margin = margin
        if margin > self.tolerance:
            r.exceedance_samples += 1
        if self._fault_ms is None and device.firmware.state is FirmwareState.FAULT:
            self._fault_ms = now
        if self._fault_ms is not None and r.vent_ms is None and level < self.vented:
            r.vent_ms = now - self._fault_ms
        if self.keep:
            r.trajectory.append((now, level, self.cap))
        while self.actions and self.actions[0][0] <= now:
            self.actions.pop(0)[1]()


@dataclass
class _LinkPlan:
    quiet_from_ms: int | None = None
    """The host goes quiet (hung, asleep): nothing it sends arrives from then on."""
    cut_from_ms: int | None = None
    """The first link goes silent both ways (out of range); a reconnect gets a good one."""
    links: int = 0


class _CampaignLink(SimTransport):
    """The in-process link with the campaign's host-side faults, in device time."""

    def __init__(self, url: str, *, simulation: Simulation, plan: _LinkPlan) -> None:
        super().__init__(url, simulation=simulation)
        plan.links += 1
        self.plan = plan
        self.first = plan.links == 1

    def _cut(self) -> bool:
        at = self.plan.cut_from_ms
        return self.first and at is not None and self.simulation.device.now_ms >= at

    async def send(self, payload: bytes) -> None:
        quiet = self.plan.quiet_from_ms
        if self._cut() or (quiet is not None and self.simulation.device.now_ms >= quiet):
            return
        await super().send(payload)

    def from_device(self, payload: bytes) -> None:
        if not self._cut():
            super().from_device(payload)


def _plan_actions(scenario: Scenario, session: Session, probe: Probe, length_ms: int) -> int | None:
    rng = random.Random(f"actions:{scenario.seed}")
    at = rng.randrange(length_ms // 8, max(length_ms // 2, length_ms // 8 + 1))
    if scenario.action == "comfort":
        probe.actions.append((at, session.too_strong))
    elif scenario.action == "cap-lowered":
        later = at + rng.randrange(1000, 20_000)
        probe.actions += [(at, session.too_strong), (later, session.too_strong)]
    elif scenario.action == "pause-storm":
        t = at
        for _ in range(rng.randrange(3, 10)):
            probe.actions.append((t, session.pause))
            t += rng.randrange(10, 500)
            probe.actions.append((t, session.resume))
            t += rng.randrange(10, 500)
    elif scenario.action == "host-silence":
        return at
    return None


async def run_one(
    scenario: Scenario, program: Program, journal: Journal, *, keep_trajectory: bool = False
) -> RunResult:
    result = RunResult(scenario, "unknown", "")
    sim = Simulation(SimOptions.from_url(scenario.url))
    probe = Probe(sim.device, result, keep_trajectory)
    links = _LinkPlan(cut_from_ms=scenario.link_cut_ms)

    def connect(url: str) -> Device:
        return Device(_CampaignLink(url, simulation=sim, plan=links))

    session = Session(
        program,
        [scenario.url],
        profile=HealthProfile(),
        journal=journal,
        reconnect=ReconnectPolicy(maximum_s=4.0, first_attempts=1, attempts_per_loss=1),
        connect=connect,
    )
    links.quiet_from_ms = _plan_actions(scenario, session, probe, program_ms(program))
    try:
        async with asyncio.timeout(HANG_S):
            outcome = await session.run()
        result.outcome, result.detail = outcome.outcome, outcome.detail or ""
        if outcome.session_id is None:  # refused, or never started: nothing to compare
            result.outcome = "refused"
        else:
            result.journal_ok = _journal_matches(journal, outcome.session_id, outcome, sim)
    except TimeoutError:
        result.outcome, result.hang = "hang", True
    finally:
        # The session has ended (or hung): vent as a shutdown would and watch that too.
        sim.device.power_off_vent(asyncio.get_running_loop().time())
        await sim.stop()
    result.device_ms = sim.device.now_ms
    return result


def _journal_matches(
    journal: Journal, session_id: int | None, outcome: object, sim: Simulation
) -> bool:
    """The journal says what happened: same outcome and peak, and a device fault recorded."""
    if session_id is None:
        return False
    record = journal.session(session_id)
    if record.outcome != getattr(outcome, "outcome", None):
        return False
    if record.peak_level != getattr(outcome, "peak_level", None):
        return False
    faulted = sim.device.firmware.fault.value != 0
    return not (faulted and record.outcome == "faulted" and not journal.faults(session_id))


async def run_campaign(
    runs: int,
    seed: int,
    *,
    faults: Sequence[str] | None = None,
    actions: Sequence[str] = ACTIONS,
    jobs: int = 8,
    journal_dir: Path | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> tuple[list[RunResult], float]:
    """Every run, and the wall seconds taken. Runs `jobs` sessions at once on one loop, so
    the wall-clock waits of some (watchdog, link loss) overlap the work of others."""
    programs = shipped_programs()
    plan = scenarios(runs, seed, faults=faults, actions=actions, programs=programs)
    results: list[RunResult] = []
    gate = asyncio.Semaphore(jobs)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="acudevice-campaign-") as tmp:
        base = journal_dir or Path(tmp)

        async def one(scenario: Scenario) -> None:
            # A journal per run: one run's "too strong" must not screen the next run out.
            path = base / f"run-{scenario.seed}.sqlite3"
            async with gate:
                with Journal(path) as journal:
                    result = await run_one(scenario, programs[scenario.program], journal)
                path.unlink(missing_ok=True)
            results.append(result)
            if on_result is not None:
                on_result(result)

        await asyncio.gather(*(one(s) for s in plan))
        results = [await _confirm_hang(r, programs, base) if r.hang else r for r in results]
    return results, time.perf_counter() - started


async def _confirm_hang(run: RunResult, programs: dict[str, Program], base: Path) -> RunResult:
    """A run past HANG_S among `jobs` others on a busy machine may only have been starved
    of wall time (link faults wait on wall-clock deadlines): run it again, alone. A hang
    that repeats stays a hang; anything the first attempt saw over the cap still counts."""
    if run.exceeded:
        return run
    path = base / f"rerun-{run.scenario.seed}.sqlite3"
    with Journal(path) as journal:
        again = await run_one(run.scenario, programs[run.scenario.program], journal)
    path.unlink(missing_ok=True)
    again.slow_under_load = not again.hang
    return again


async def rerun_worst(results: list[RunResult], count: int) -> list[RunResult]:
    """The `count` runs that came closest to (or over) the cap, again, keeping trajectories.
    Seeded, so the rerun follows the same path up to host scheduling."""
    programs = shipped_programs()
    worst = sorted(results, key=lambda r: r.worst_margin, reverse=True)[:count]
    out = []
    with tempfile.TemporaryDirectory(prefix="acudevice-campaign-") as tmp:
        for run in worst:
            with Journal(Path(tmp) / f"run-{run.scenario.seed}.sqlite3") as journal:
                program = programs[run.scenario.program]
                out.append(await run_one(run.scenario, program, journal, keep_trajectory=True))
    return out

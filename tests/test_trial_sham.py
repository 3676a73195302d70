"""The sham program is screened, monitored and journalled like any program: a fault in a sham
session is shown and stops it exactly as in an active one."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from acudevice.paths import shipped_profiles_dir
from acudevice.plan.library import ProgramLibrary, load_device, load_points
from acudevice.plan.program import Program
from acudevice.plan.protocol import parse_protocol, program_seconds
from acudevice.safety.forward import ways_forward
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import screen
from acudevice.session.events import Ended, Fault, SessionEvent, Started
from acudevice.session.runner import Session
from acudevice.store import Journal
from tests.session_helpers import connector, simulated

pytestmark = [pytest.mark.sim, pytest.mark.looptime]
STUDY = parse_protocol(shipped_profiles_dir() / "studies" / "nausea-trial.toml")
SHAM = ProgramLibrary().get("nausea-sham")
ACTIVE = ProgramLibrary().get("nausea-relief")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


def test_the_sham_has_the_active_timings_below_the_capillary_closing_pressure() -> None:
    assert [(p.kind, p.duration_s) for p in SHAM.phases] == [
        (p.kind, p.duration_s) for p in ACTIVE.phases
    ]
    assert (SHAM.repeats, SHAM.rest_between_s, SHAM.sites) == (
        ACTIVE.repeats, ACTIVE.rest_between_s, ACTIVE.sites,
    )  # fmt: skip
    assert program_seconds(SHAM) == program_seconds(ACTIVE)
    peak = max(p.target_kpa or 0 for p in SHAM.phases)
    assert 0 < peak < 4.3, "under capillary closing pressure (facts.md), a light touch"


@pytest.mark.parametrize(
    "program", [SHAM, STUDY.participant_program("sham")], ids=["shipped", "delivered"]
)
def test_the_sham_passes_the_same_screening_as_any_program(program: Program) -> None:
    verdict = screen(program, load_device("wristband-p1"), load_points(), HealthProfile())
    assert verdict.status == "ok" and verdict.schedule is not None
    pregnant = screen(
        program, load_device("wristband-p1"), load_points(), HealthProfile(pregnant=True)
    )
    active = screen(
        ACTIVE, load_device("wristband-p1"), load_points(), HealthProfile(pregnant=True)
    )
    assert pregnant.status == active.status, "the same rules for both arms"


async def run(program: Program, url: str, journal: Journal) -> tuple[list[SessionEvent], int]:
    """The session's events, and the band's true level once it has ended and vented."""
    async with simulated(url) as sim:
        events: list[SessionEvent] = []
        runner = Session(program, ["sim://"], journal=journal, connect=connector(sim))
        runner.subscribe(events.append)
        await runner.run()
        await asyncio.sleep(12)  # the band's vent time, on the virtual clock
        return events, sim.device.true_level


async def test_a_sham_session_runs_to_the_end_on_the_simulator(journal: Journal) -> None:
    delivered = STUDY.participant_program("sham")
    events, level = await run(delivered, "sim://?speed=max&seed=4", journal)
    [started] = [e for e in events if isinstance(e, Started)]
    [ended] = [e for e in events if isinstance(e, Ended)]
    assert started.program == "study-programme" and started.title == "Study programme"
    assert started.total_ms == program_seconds(ACTIVE) * 1000
    result = ended.result
    assert result.outcome == "completed" and result.repeats_done == 4
    assert 2_500 < result.peak_level < 3_700, "about 3 kPa"
    record = journal.session(result.session_id)
    assert record.program == "study-programme", "the journal knows the label, not the arm"
    assert len(journal.samples(result.session_id)) > 100 and level < 2_000


@pytest.mark.parametrize("arm", ["active", "sham"])
async def test_a_stuck_pump_faults_a_sham_session_as_it_does_an_active_one(
    arm: str, journal: Journal
) -> None:
    program = STUDY.participant_program(arm)
    before = dt.datetime.now(dt.UTC)
    events, level = await run(program, "sim://?speed=max&fault=stuck-pump:20000", journal)
    faults = [e for e in events if isinstance(e, Fault)]
    [ended] = [e for e in events if isinstance(e, Ended)]
    assert faults and faults[0].code == "device-fault" and "STUCK_PUMP" in faults[0].message
    assert ended.result.outcome == "faulted" and ended.result.repeats_done < 4
    assert level < 2_000, "vented"
    [recorded] = journal.faults(ended.result.session_id)
    assert recorded.code == "device-fault"
    assert journal.session(ended.result.session_id).started_at >= before.timestamp() - 1


def test_the_sham_is_never_offered_as_a_treatment() -> None:
    """A trial's control must not be suggested as a "gentler program" to someone whose
    comfort maximum the real one exceeds (it was, before `sham = true`)."""
    library = ProgramLibrary()
    active, sham = library.get("nausea-relief"), library.get("nausea-sham")
    assert sham.sham and not active.sham
    tight = HealthProfile(comfort_max_kpa={"PC6": 4})
    ways = ways_forward(
        active,
        load_device("wristband-p1"),
        load_points(),
        tight,
        programs=[p for _, p in library.load_all().values()],
    )
    assert ways, "a gentler way exists (the comfortable level)"
    assert all(w.program != "nausea-sham" for w in ways), ways

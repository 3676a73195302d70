"""Tests that pin the safety rules exactly, so that no rule can loosen unnoticed.

Each limit is tested on both sides; each ESTOP is asserted as the band's own VentStarted
with reason HOST_ESTOP, at the moment it is due, not merely as low pressure afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from acudevice.device import Device
from acudevice.plan.library import load_device, load_points
from acudevice.protocol import FirmwareState, Reason, Start, Stop, decode
from acudevice.protocol.messages import VentStarted
from acudevice.safety.findings import PlanRefused
from acudevice.safety.profile import HealthProfile
from acudevice.safety.rules import RuleId
from acudevice.safety.screening import screen
from acudevice.session.monitor import ChannelMonitor
from acudevice.session.runner import Session
from acudevice.store import Journal
from acudevice.store.journal import SampleRow
from simulator.loopback import SimTransport, Simulation
from tests.plan_helpers import hand_made_ramp, program
from tests.session_helpers import NAUSEA as NAUSEA_PROGRAM
from tests.session_helpers import Watch, connector, session, simulated
from tests.sim_helpers import NAUSEA, loaded
from tests.test_session_monitor import SCHEDULE, sample

BAND = load_device("wristband-p1")
CATALOG = load_points()


def phases(hold_s: float = 60, target_kpa: float = 12) -> list[dict[str, Any]]:
    return [
        {"kind": "ramp", "duration_s": 30, "target_kpa": target_kpa},
        {"kind": "hold", "duration_s": hold_s},
        {"kind": "release", "duration_s": 30},
    ]


# ---------------------------------------------------------------- the envelope, both sides


@pytest.mark.unit
def test_bleeding_risk_halves_the_lowest_term_so_a_sensitive_site_gets_a_quarter() -> None:
    """Decided: bleeding risk halves whatever cap is lowest (docs/safety.md, "halves it again")."""
    site = program(sites=[{"point": "HT7"}], phases=phases(target_kpa=4))
    verdict = screen(site, BAND, CATALOG, HealthProfile(blood_thinners=True))
    assert verdict.status == "ok" and verdict.limits is not None
    assert verdict.limits.cap_level == 5_000  # 20 kPa default, halved for HT7, halved again
    assert verdict.limits.binding.rule is RuleId.BLEEDING_RISK
    above = program(sites=[{"point": "HT7"}], phases=phases(target_kpa=5.5))
    assert screen(above, BAND, CATALOG, HealthProfile(blood_thinners=True)).status == (
        "needs-confirmation"
    )
    own_cap = screen(
        program(phases=phases(target_kpa=5)),
        BAND,
        CATALOG,
        HealthProfile(cap_kpa=12, fragile_skin=True),
    )
    assert own_cap.limits is not None and own_cap.limits.cap_level == 6_000


@pytest.mark.unit
@pytest.mark.parametrize(
    ("overrides", "status", "rule"),
    [
        ({"phases": phases(hold_s=120)}, "ok", None),
        ({"phases": phases(hold_s=120.5)}, "needs-confirmation", RuleId.HOLD_SOFT),
        ({"phases": phases(hold_s=180)}, "needs-confirmation", RuleId.HOLD_SOFT),
        ({"phases": phases(hold_s=180.5)}, "refused", RuleId.HOLD_HARD),
        ({"repeats": 5}, "ok", None),
        ({"repeats": 6}, "needs-confirmation", RuleId.REPEATS_SOFT),
        ({"repeats": 10}, "needs-confirmation", RuleId.REPEATS_SOFT),
        ({"repeats": 11}, "refused", RuleId.REPEATS_HARD),
        ({"phases": phases(target_kpa=20)}, "ok", None),
        ({"phases": phases(target_kpa=20.001)}, "refused", RuleId.EFFECTIVE_CAP),
    ],
)
def test_each_limit_on_both_sides(overrides: dict[str, Any], status: str, rule: RuleId) -> None:
    verdict = screen(program(**overrides), BAND, CATALOG)
    assert verdict.status == status, (verdict.hard, verdict.soft)
    found = {f.rule for f in (*verdict.hard, *verdict.soft)}
    assert found == ({rule} if rule else set())


@pytest.mark.unit
def test_a_reading_exactly_at_cap_plus_tolerance_is_quiet_and_one_pa_more_alarms() -> None:
    m = ChannelMonitor(SCHEDULE, cap_level=20_000, tolerance_level=1_000)
    assert m.check(sample(21_000)) is None
    alarm = m.check(sample(21_001))
    assert alarm is not None and alarm.code == "over-pressure"


# ---------------------------------------------------------------- the layers below the plan


async def test_device_load_refuses_a_hand_made_cap_above_the_hardware_maximum() -> None:
    async with simulated("sim://?speed=20") as sim, connector(sim)("sim://") as band:
        hw = band.info.hardware_max_level
        over = hand_made_ramp(to_level=8_000, duration_ms=20_000, cap_level=hw + 5_000)
        with pytest.raises(PlanRefused, match="hardware-max"):
            await band.load(over)
        assert (await band.status()).state == FirmwareState.IDLE


@pytest.mark.sim
def test_a_graceful_vent_never_pumps_even_when_the_level_falls_below_the_ramp() -> None:
    c = loaded(NAUSEA)
    c.call(Start())
    c.advance(40.0)  # in the hold at 12 kPa
    c.call(Stop())
    c.device.plant.level -= 6_000  # the arm moves: the level drops below the falling target
    while c.state is FirmwareState.VENTING:
        c.advance(0.01)
        assert c.device.firmware.actuation.drive == 0.0, c.device.firmware.target


# ---------------------------------------------------------------- ESTOP, as the band saw it


def tap_vents(sim: Simulation) -> list[VentStarted]:
    """Every VentStarted the simulated band sends, in order."""
    vents: list[VentStarted] = []
    send: Callable[[bytes], None] = sim.clock.send

    def tapped(payload: bytes) -> None:
        message = decode(payload).message
        if isinstance(message, VentStarted):
            vents.append(message)
        send(payload)

    sim.clock.send = tapped
    return vents


async def test_cancelling_a_session_sends_estop_not_stop() -> None:
    async with simulated("sim://?speed=20") as sim:
        vents = tap_vents(sim)
        watch = Watch()
        task = asyncio.create_task(session(sim, None, watch).run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [v.reason for v in vents] == [Reason.HOST_ESTOP]


async def test_the_estop_command_vents_at_once() -> None:
    async with simulated("sim://?speed=20") as sim:
        vents = tap_vents(sim)
        vented_when_told: list[bool] = []

        class Noting(Watch):
            def __call__(self, view: Any) -> None:
                super().__call__(view)
                if any("ESTOP sent" in n for n in view.log) and not vented_when_told:
                    vented_when_told.append(any(v.reason is Reason.HOST_ESTOP for v in vents))

        watch = Noting()
        runner = session(sim, None, watch)
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        runner.command("estop")
        result = await task
    assert result.outcome == "estopped" and vented_when_told == [True]
    assert vents[0].reason is Reason.HOST_ESTOP and vents[0].measured_level > 10_000


async def test_an_alarm_only_the_host_raises_estops_before_it_is_recorded() -> None:
    """Firmware that acknowledges SET_LIMITS and ignores it (a test-only fault): after "too
    strong" the band stays at the old level. Only the host can tell; it must ESTOP first."""
    async with simulated("sim://?speed=max&fault=ignore-limits") as sim:
        vents = tap_vents(sim)
        estopped_when_noted: list[bool] = []

        class Noting(Watch):
            def __call__(self, view: Any) -> None:
                super().__call__(view)
                if any("not-easing-off" in n for n in view.log):
                    estopped_when_noted.append(any(v.reason is Reason.HOST_ESTOP for v in vents))

        watch = Noting()
        runner = session(sim, None, watch)
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        runner.too_strong()
        result = await asyncio.wait_for(task, 60)
    assert result.outcome == "faulted" and "not-easing-off" in (result.detail or "")
    assert vents[0].reason is Reason.HOST_ESTOP and vents[0].measured_level > 10_000, vents
    assert estopped_when_noted and estopped_when_noted[0], "ESTOP came after the record"


async def test_an_exception_in_the_host_estops_before_it_propagates(tmp_path: Path) -> None:
    """A crash anywhere in the host's session path (here the journal, mid-hold) still vents
    the band first, and is raised, not hidden."""

    class Breaking(Journal):
        def add_sample_rows(self, session_id: int, rows: Sequence[SampleRow]) -> None:
            if any(row[2] > 11_000 for row in rows):
                raise RuntimeError("the journal broke")
            super().add_sample_rows(session_id, rows)

    async with simulated("sim://?speed=20") as sim:
        vents = tap_vents(sim)
        with (
            Breaking(tmp_path / "j.sqlite3") as journal,
            pytest.raises(RuntimeError, match="broke"),
        ):
            await session(sim, journal, Watch()).run()
        assert [v.reason for v in vents] == [Reason.HOST_ESTOP]
        assert vents[0].measured_level > 10_000


async def test_a_broken_subscriber_does_not_stop_the_safety_loop() -> None:
    """A live view that raises is logged and left behind; the session goes on watching the
    band, and its alarms still vent it."""
    async with simulated("sim://?speed=max&fault=stuck-pump:40000") as sim:

        class Crashing(Watch):
            def __call__(self, view: Any) -> None:
                super().__call__(view)
                raise RuntimeError("the live view broke")

        result = await session(sim, None, Crashing()).run()
    assert result.outcome == "faulted" and "STUCK_PUMP" in (result.detail or "")
    assert result.peak_level > 10_000, "it ran on, watched, into the hold where the pump stuck"


async def test_an_alarm_estops_the_other_band_before_it_is_recorded() -> None:
    """Two bands: the left one's pump sticks; its firmware vents itself, but only the host
    can tell the healthy right band, so its vent (HOST_ESTOP) is the host's alone."""
    async with (
        simulated("sim://?speed=max&seed=1&fault=stuck-pump:40000") as left,
        simulated("sim://?speed=max&seed=2") as right,
    ):
        sims = {left.options.to_url(): left, right.options.to_url(): right}
        vents = tap_vents(right)
        estopped_when_noted: list[bool] = []

        class Noting(Watch):
            def __call__(self, view: Any) -> None:
                super().__call__(view)
                if any(n.startswith("fault ") for n in view.log) and not estopped_when_noted:
                    estopped_when_noted.append(any(v.reason is Reason.HOST_ESTOP for v in vents))

        runner = Session(
            NAUSEA_PROGRAM, list(sims), connect=lambda url: Device(SimTransport.to(sims[url]))
        )
        result = await Noting().follow(runner).run()
    assert result.outcome == "faulted", result
    assert vents and vents[0].reason is Reason.HOST_ESTOP, vents
    assert vents[0].measured_level > 10_000  # mid-hold, at pressure
    assert estopped_when_noted == [True], "ESTOP came after the record"

"""The main job against the simulator: a session that completes, stops, eases off, faults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acudevice.device import Device, RequestRefused
from acudevice.device.device import AUTO_BATCH_MS
from acudevice.device.keeper import Keeper, ReconnectPolicy
from acudevice.plan.schedule import PhaseKind, Schedule
from acudevice.protocol import (
    Deframer,
    EventCode,
    FaultCode,
    FirmwareState,
    Kind,
    Opcode,
    Reason,
    Result,
    Stop,
    frame,
)
from acudevice.protocol.messages import FaultRaised
from acudevice.safety.compiler import compile_program
from acudevice.safety.findings import PlanRefused
from acudevice.safety.limits import effective_limits
from acudevice.session.events import CapLowered, Note
from acudevice.session.runner import Session
from acudevice.store import Journal
from simulator.link_bands import served_bands
from simulator.loopback import SimTransport, Simulation
from tests.keeper_helpers import Tap
from tests.plan_helpers import hand_made_ramp
from tests.session_helpers import NAUSEA, Watch, connector, session, simulated

# The loop's clock is virtual (looptime): the band's wall-clock watchdog and vent times
# pass at once and exactly, so timings are asserted, never slept through.
pytestmark = [pytest.mark.sim, pytest.mark.looptime]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as j:
        yield j


async def test_completed_session_follows_the_plan(journal: Journal) -> None:
    async with simulated("sim://?speed=max&seed=3") as sim:
        result = await session(sim, journal, Watch()).run()
    assert result.outcome == "completed" and result.repeats_done == 4
    assert 11_000 < result.peak_level <= 12_000 + 1_000
    record = journal.session(result.session_id)
    schedule = Schedule.model_validate(record.schedule)
    samples = journal.samples(result.session_id)
    assert len(samples) > 1000
    for s in samples:  # hold phases: within the sensor tolerance of the plan
        seg = schedule.segment_at(s.t_ms - 100)
        if seg is not None and seg.phase is PhaseKind.HOLD and s.t_ms - seg.start_ms > 2_000:
            assert abs(s.measured_level - seg.to_level) < 1_000, s


async def test_cancelling_mid_hold_vents_and_records_stopped(journal: Journal) -> None:
    async with simulated("sim://?speed=20") as sim:
        watch = Watch()
        task = asyncio.create_task(session(sim, journal, watch).run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        assert sim.device.true_level > 10_000
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(10 / 20 + 0.2)  # the vent time at speed 20, on the virtual clock
        assert sim.device.true_level < 2_000
    [record] = journal.sessions()
    assert record.outcome == "stopped"


async def test_too_strong_drops_at_once_and_is_remembered(journal: Journal) -> None:
    async with simulated("sim://?speed=20") as sim:
        watch = Watch()
        runner = session(sim, journal, watch)
        lowered: list[CapLowered] = []
        runner.subscribe(lambda e: lowered.append(e) if isinstance(e, CapLowered) else None)
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        before = len(watch.views)
        runner.too_strong()
        await watch.until(lambda: len(watch.views) > before + 1)
        [event] = lowered
        assert 11_000 < (event.felt_level or 0) < 13_000, "felt: the hold's measured level"
        gentler = int((event.felt_level or 0) * 0.7)
        assert event.level == gentler and event.cause == "too-strong"
        assert watch.views[before + 1][3] <= gentler, "target lowered within one telemetry period"
        await watch.until(lambda: sim.device.true_level < gentler + 500)
        runner.stop()
        result = await task
    assert result.outcome == "stopped" and result.comfort_level == gentler
    assert result.cap_level == gentler and result.screened_cap_level == 20_000
    assert journal.comfort_max("pressure") == {"PC6": gentler}
    # The next session meets the remembered maximum as a soft limit.
    async with simulated("sim://?speed=max") as sim:
        result = await session(sim, journal, Watch()).run()
    assert result.refused and result.verdict is not None
    assert "comfort-max" in result.detail


async def test_a_participant_s_too_strong_screens_their_sessions_only(journal: Journal) -> None:
    """The same journal, two people: P1's remembered maximum is P1's, and a session screens
    and journals under the participant it names."""
    async with simulated("sim://?speed=20") as sim:
        watch = Watch()
        runner = session(sim, journal, watch, participant="P1")
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        runner.too_strong()
        await watch.until(lambda: runner.cap_level is not None and runner.cap_level < 12_000)
        runner.stop()
        first = await task
    assert first.comfort_level is not None
    assert journal.comfort_max("pressure", participant="P1") == {"PC6": first.comfort_level}
    assert journal.comfort_max("pressure") == {}
    async with simulated("sim://?speed=max") as sim:
        theirs = await session(sim, journal, Watch(), participant="P1").run()
        others = await session(sim, journal, Watch(), participant="P2").run()
    assert theirs.refused and "comfort-max" in (theirs.detail or "")
    assert others.outcome == "completed" and others.cap_level == 20_000
    assert journal.session(others.session_id).participant == "P2"


async def test_a_withdrawn_participant_s_session_is_refused_before_anything_moves(
    journal: Journal,
) -> None:
    journal.withdraw("P1")
    async with simulated("sim://?speed=max") as sim:
        result = await session(sim, journal, Watch(), participant="P1").run()
        assert sim.device.true_level < 500
    assert result.refused and result.session_id is None
    assert "P1' has withdrawn" in (result.detail or "")
    assert journal.sessions() == []


async def test_stuck_pump_is_estopped_recorded_faulted_and_vented(journal: Journal) -> None:
    async with simulated("sim://?speed=20&fault=stuck-pump:45000") as sim:
        result = await session(sim, journal, Watch()).run()
        assert result.outcome == "faulted"
        await asyncio.sleep(10 / 20 + 0.2)
        assert sim.device.true_level < 2_000
    assert result.faults and journal.faults(result.session_id)


async def test_link_drop_mid_hold_reconnects_and_restarts_the_repeat_vented(
    journal: Journal,
) -> None:
    async with simulated("sim://?speed=20&fault=drop:2500") as sim:
        watch = Watch()
        runner = session(sim, journal, watch, reconnect_attempts=2)
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any("restarting repeat" in n for n in watch.notes), within_s=30)
        assert sim.device.true_level < 2_000, "restarted from a ramp, never at pressure"
        runner.stop()
        result = await task
    codes = [f.code for f in journal.faults(result.session_id)]
    assert "link-lost" in codes and "device-watchdog" in codes


async def test_a_band_back_before_its_watchdog_is_vented_then_the_repeat_restarts(
    journal: Journal,
) -> None:
    """The band's side drops the link mid-hold and takes the next connect at once, before its
    3 s watchdog: the band was still running at pressure, on the new link's heartbeats. It
    is vented (ESTOP) first; then the repeat restarts from its ramp and the session ends
    completed. (It once waited for a vent that never came, and ended faulted.)"""
    async with simulated("sim://?speed=20&seed=3") as sim:
        tap = Tap(sim)
        watch = Watch()
        runner = session(sim, journal, watch)
        levels_at_restart: list[float] = []
        runner.subscribe(
            lambda e: (
                levels_at_restart.append(sim.device.true_level)
                if isinstance(e, Note) and "restarting repeat" in e.message
                else None
            )
        )
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        assert sim.link is not None and sim.device.true_level > 10_000
        sim.link.lose("the band dropped the link")
        result = await asyncio.wait_for(task, 120)
    assert result.outcome == "completed" and result.repeats_done == 4
    assert [f.split(":")[0] for f in result.faults] == ["link-lost"]
    assert tap.reasons == [Reason.HOST_ESTOP, Reason.SCHEDULE_DONE], "vented at the reconnect"
    assert levels_at_restart and levels_at_restart[0] < 2_000, "restarted from a ramp"


@pytest.mark.parametrize("silent_s", [2.0, 2.6])
async def test_a_silence_that_trips_the_bands_watchdog_is_recovered_as_a_lost_link(
    journal: Journal, silent_s: float
) -> None:
    """A line silent for a couple of seconds: the band's watchdog vents it before the host
    calls the link lost. Its WATCHDOG fault (the event, or FAULT in telemetry with the event
    lost in the silence) means our frames stopped reaching it: the session reconnects and
    restarts the repeat, as for any lost link, instead of ending faulted."""
    async with simulated("sim://?speed=20&seed=3") as sim:
        watch = Watch()
        task = asyncio.create_task(session(sim, journal, watch).run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        sim.silence(silent_s)
        result = await asyncio.wait_for(task, 120)
    assert (result.outcome, result.repeats_done) == ("completed", 4), result.detail
    assert [f.split(":")[0] for f in result.faults] == ["link-lost", "device-watchdog"]
    assert "stopped hearing us" in journal.faults(result.session_id)[0].message


async def test_a_band_still_venting_when_the_host_is_back_is_cleared_once_vented(
    tmp_path: Path, journal: Journal
) -> None:
    """A real band (speed 1) takes seconds to vent after its watchdog trips. A host back
    sooner found it in FAULT, still venting; its STOP to clear the fault was refused (the
    band clears it only once vented) and the session ended faulted. It now waits for the
    vent, clears the fault and restarts the repeat from its ramp."""
    async with served_bands("sim", 1, tmp_path, url="sim://?speed=1&seed=3") as [band]:
        policy = ReconnectPolicy(initial_s=0.5, maximum_s=1.0)
        async with Keeper(band.url, policy=policy, connect=band.connect) as keeper:
            watch = Watch()
            runner = watch.follow(Session(NAUSEA, [keeper], journal=journal))
            task = asyncio.create_task(runner.run())
            await watch.until(lambda: band.sim.device.true_level > 10_000, within_s=120)
            await band.go_away(3.5)  # past its 3 s watchdog, back before its vent is done
            restarted = lambda: any("restarting repeat" in n for n in watch.notes)  # noqa: E731
            await watch.until(lambda: restarted() or task.done(), 60)
            assert not task.done(), task.result().detail
            assert band.sim.device.true_level < 2_000, "restarted from a ramp, never at pressure"
            runner.stop()
            result = await asyncio.wait_for(task, 60)
    assert result.outcome == "stopped", result.detail
    assert [f.split(":")[0] for f in result.faults] == ["link-lost", "device-watchdog"]


async def test_a_busy_device_refuses_a_second_program() -> None:
    async with simulated("sim://?speed=20") as sim, connector(sim)("sim://") as band:
        schedule = compile_program(
            NAUSEA, effective_limits(band.info.device_model), band.info.device_model
        )
        await band.set_limits(schedule.cap_level)
        await band.load(schedule)
        await band.start()
        with pytest.raises(RequestRefused) as refused:
            await band.load(schedule)
        assert refused.value.result == Result.BAD_STATE


async def test_two_wrists_start_together_and_report_their_skew(journal: Journal) -> None:
    async with (
        simulated("sim://?speed=max&seed=1") as left,
        simulated("sim://?speed=max&seed=2") as right,
    ):
        sims = {"left": left, "right": right}
        runner = Session(
            NAUSEA,
            ["left", "right"],
            journal=journal,
            connect=lambda url: connector(sims[url])(url),
        )
        result = await runner.run()
    assert result.outcome == "completed"
    assert result.start_skew_ms is not None and 0 <= result.start_skew_ms < 100
    assert journal.session(result.session_id).start_skew_ms == result.start_skew_ms


async def test_heartbeat_loss_alone_vents_within_three_seconds() -> None:
    loop = asyncio.get_running_loop()
    async with simulated("sim://?speed=1") as sim:
        band = Device(SimTransport.to(sim), heartbeat_interval_s=None)
        async with band:
            schedule = compile_program(
                NAUSEA, effective_limits(band.info.device_model), band.info.device_model
            )
            events = band.stream()
            await band.set_limits(schedule.cap_level)
            await band.load(schedule)
            await band.start()
            silent_since = loop.time()
            async with asyncio.timeout(6):
                async for item in events:
                    if isinstance(item, FaultRaised) and item.fault == FaultCode.WATCHDOG:
                        break
            waited = loop.time() - silent_since
            assert 2.5 < waited < 3.5
            assert (await band.status()).state == FirmwareState.FAULT


async def test_the_host_refuses_a_hand_made_schedule_above_its_cap_before_sending() -> None:
    """Layer 2 with the plan layer bypassed: nothing reaches the band, it stays idle."""
    async with simulated("sim://?speed=20") as sim, connector(sim)("sim://") as band:
        over = hand_made_ramp(to_level=15_000, duration_ms=20_000, cap_level=10_000)
        await band.set_limits(20_000)
        with pytest.raises(PlanRefused, match="effective-cap"):
            await band.load(over)
        status = await band.status()
        assert status.state == FirmwareState.IDLE and sim.device.true_level < 500


async def test_the_host_refuses_a_segment_steeper_than_the_bands_ramp_limit() -> None:
    """INFO's ramp limit is checked on the host too: the band would refuse it anyway."""
    async with simulated("sim://?speed=20") as sim, connector(sim)("sim://") as band:
        assert band.info.ramp_limit_per_s == 2_000
        steep = hand_made_ramp(to_level=8_000, duration_ms=3_000, cap_level=10_000)
        with pytest.raises(PlanRefused, match="device-ramp-rate"):
            await band.load(steep)  # no SET_LIMITS: a LOAD_BEGIN sent would be LIMITS_NOT_SET
        assert (await band.status()).state == FirmwareState.IDLE


async def test_a_link_that_drops_after_every_reconnect_ends_the_session(journal: Journal) -> None:
    # drop:MS cuts every new connection MS after it opens: each reconnect restarts the
    # repeat and loses the link again, so only a per-session budget ends it.
    async with simulated("sim://?speed=20&fault=drop:1500") as sim:
        runner = session(sim, journal, Watch(), link_losses_allowed=2)
        result = await asyncio.wait_for(runner.run(), timeout=600)
        assert result.outcome == "link-lost" and result.repeats_done < 4, "ended, not finished"
        assert "3 times" in result.detail
    codes = [f.code for f in journal.faults(result.session_id)]
    assert codes.count("link-lost") == 3
    assert journal.session(result.session_id).outcome == "link-lost"


async def test_a_damaged_frame_either_way_does_not_fail_an_idempotent_request() -> None:
    # One frame in ten damaged, either way: a request and its reply survive together only
    # four times in five. Idempotent requests are sent again (same seq), so all succeed.
    transport = SimTransport("sim://?speed=max&seed=4&fault=corrupt:0.1")
    async with Device(transport) as band:
        for _ in range(40):
            await band.status()
        await band.set_limits(10_000)
        await band.heartbeat()
        up, down = transport.frames_rejected
    assert up > 0 and down > 0, "the fault damaged frames both ways"


@pytest.mark.parametrize(("speed", "batch_ms"), [("max", AUTO_BATCH_MS), ("20", 0), ("1", 0)])
async def test_only_a_band_without_a_clock_is_asked_to_batch_its_telemetry(
    speed: str, batch_ms: int
) -> None:
    """At speed=max one payload per sample is what the host spends its time on; a band with a
    clock sends each sample alone, so the host sees and records it at once."""
    transport = SimTransport(f"sim://?speed={speed}")
    async with Device(transport):
        assert transport.device.firmware.batch_ms == batch_ms


class _LosesScheduleDone(SimTransport):
    """A link that loses one kind of frame: the band's SCHEDULE_DONE event."""

    def from_device(self, payload: bytes) -> None:
        if payload[1] == Kind.EVENT and payload[4] == EventCode.SCHEDULE_DONE:
            return
        super().from_device(payload)


async def test_a_lost_schedule_done_event_still_ends_the_session_completed(
    journal: Journal,
) -> None:
    """Telemetry shows the band at rest after its last segment: waiting for the lost event
    would be for ever."""
    async with simulated("sim://?speed=max&seed=5") as sim:
        runner = session(
            sim, journal, Watch(), connect=lambda url: Device(_LosesScheduleDone.to(sim))
        )
        result = await asyncio.wait_for(runner.run(), timeout=120)
    assert result.outcome == "completed" and result.repeats_done == 4
    assert journal.session(result.session_id).outcome == "completed"


async def test_a_band_that_stops_mid_program_without_being_asked_ends_the_session(
    journal: Journal,
) -> None:
    """Anything but this session stopping the band (another host, a button): the session
    sees it at rest mid-program, vents and ends faulted instead of waiting for ever."""
    async with simulated("sim://?speed=20&seed=6") as sim:
        watch = Watch()
        async with Keeper(sim.options.to_url(), connect=connector(sim)) as keeper:
            runner = watch.follow(Session(NAUSEA, [keeper], journal=journal))
            task = asyncio.create_task(runner.run())
            await watch.until(lambda: any(v[1] == "hold" for v in watch.views), within_s=60)
            await keeper.device.link.request(Stop(), deadline_s=2.0)  # not through the session
            result = await asyncio.wait_for(task, timeout=120)
    assert result.outcome == "faulted"
    assert "stopped-unannounced" in result.detail
    assert [f.code for f in journal.faults(result.session_id)] == ["stopped-unannounced"]


@dataclass
class _Damage:
    """Which one frame to damage: the first carrying `opcode`, one way, after `links` links."""

    opcode: Opcode
    request: bool
    """True: the request on its way to the band; False: the band's reply."""
    after_links: int = 0
    links: int = 0
    rejected: int = 0


class _DamagesOneFrame(SimTransport):
    """A link that damages exactly one chosen frame; the far end's CRC throws it away."""

    def __init__(self, url: str, *, simulation: Simulation, damage: _Damage) -> None:
        super().__init__(url, simulation=simulation)
        self.damage = damage
        damage.links += 1

    def _survives(self, payload: bytes, kind: Kind) -> bool:
        d = self.damage
        if d.rejected or d.links <= d.after_links or payload[1] != kind or payload[4] != d.opcode:
            return True
        damaged = bytearray(frame(payload))
        damaged[len(damaged) // 2] ^= 0x5A
        deframer = Deframer()
        assert deframer.feed(bytes(damaged)) == [] and deframer.error_count == 1
        d.rejected += 1
        return False

    async def send(self, payload: bytes) -> None:
        if self._survives(payload, Kind.REQUEST) or not self.damage.request:
            await super().send(payload)

    def from_device(self, payload: bytes) -> None:
        if self.damage.request or self._survives(payload, Kind.RESPONSE):
            super().from_device(payload)


@pytest.mark.parametrize("upward", [True, False], ids=["request", "reply"])
@pytest.mark.parametrize("opcode", [Opcode.LOAD_SEGMENT, Opcode.START])
async def test_one_damaged_frame_while_starting_is_sent_again_and_the_session_completes(
    journal: Journal, opcode: Opcode, upward: bool
) -> None:
    """One lost LOAD step or START, either way, used to end the session before it began
    ("no answer within 2 s"): every request is sent again, byte for byte, and a band that
    acted on the first answers the copy from its memory without acting twice."""
    damage = _Damage(opcode, upward)
    async with simulated("sim://?speed=max&seed=8") as sim:
        runner = session(
            sim,
            journal,
            Watch(),
            connect=lambda url: Device(_DamagesOneFrame(url, simulation=sim, damage=damage)),
        )
        result = await asyncio.wait_for(runner.run(), timeout=120)
    assert damage.rejected == 1
    assert (result.outcome, result.repeats_done, result.faults) == ("completed", 4, ())


@pytest.mark.parametrize("upward", [True, False], ids=["request", "reply"])
async def test_one_damaged_status_while_recovering_a_link_is_sent_again_and_the_session_completes(
    journal: Journal, upward: bool
) -> None:
    """STATUS is what a reconnect asks first (is the band still moving? did it vent?): a
    damaged one is sent again, and the session starts its repeat again and completes."""
    damage = _Damage(Opcode.STATUS, upward, after_links=1)
    async with simulated("sim://?speed=20&seed=9") as sim:
        watch = Watch()
        runner = session(
            sim,
            journal,
            watch,
            connect=lambda url: Device(_DamagesOneFrame(url, simulation=sim, damage=damage)),
        )
        task = asyncio.create_task(runner.run())
        await watch.until(lambda: any(phase == "hold" for _, phase, _, _ in watch.views))
        assert sim.link is not None
        sim.link.lose("the band dropped the link")
        result = await asyncio.wait_for(task, 120)
    assert damage.rejected == 1 and damage.links == 2
    assert (result.outcome, result.repeats_done) == ("completed", 4)
    assert [f.split(":")[0] for f in result.faults] == ["link-lost"]


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_a_line_that_damages_one_frame_in_fifty_still_completes_sessions(
    journal: Journal, seed: int
) -> None:
    async with simulated(f"sim://?speed=20&seed={seed}&fault=corrupt:0.02") as sim:
        result = await asyncio.wait_for(session(sim, journal, Watch()).run(), timeout=600)
    assert (result.outcome, result.repeats_done) == ("completed", 4), result.detail

"""The in-process `sim://` transport: entry point, clock speeds, watchdog, link faults."""

from __future__ import annotations

import asyncio

import pytest

from acudevice.plan.schedule import Schedule
from acudevice.protocol import (
    FaultCode,
    FaultRaised,
    FirmwareState,
    Hello,
    Info,
    InfoResponse,
    Reason,
    Result,
    ScheduleDone,
    SetLimits,
    StateChanged,
    Status,
    StatusResponse,
    Stop,
    Telemetry,
    encode,
)
from acudevice.transport import Transport, TransportClosed, TransportError, open_transport
from simulator.client import ProtocolClient, ramp_hold_release
from simulator.loopback import SimTransport, Simulation
from simulator.options import SimOptions

# The loop's clock is virtual (looptime): the band's wall-clock watchdog and vent times
# pass at once and exactly, so timings are asserted, never slept through.
pytestmark = [pytest.mark.sim, pytest.mark.model, pytest.mark.looptime]

S = FirmwareState
SHORT = ramp_hold_release(peak_level=2_000, ramp_ms=1_000, hold_ms=500, release_ms=1_000)
NAUSEA = ramp_hold_release(
    peak_level=12_000, ramp_ms=30_000, hold_ms=60_000, release_ms=30_000, repeats=4
)


def vent_done(c: ProtocolClient) -> bool:
    return any(
        isinstance(e, StateChanged) and e.reason is Reason.VENT_DONE
        for e in c.events_of(StateChanged)
    )


async def test_sim_scheme_is_found_through_the_entry_point() -> None:
    transport = open_transport("sim://?model=vibepad-v1&seed=4&speed=max")
    assert isinstance(transport, SimTransport) and isinstance(transport, Transport)
    async with ProtocolClient(transport) as c:
        await c.call(Hello())
        info = await c.call(Info())
        assert isinstance(info, InfoResponse)
        assert info.model == "vibepad-v1" and info.time_scale == 0
        assert info.serial == "SIM-00000004"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://?colour=red", "unknown sim option"),
        ("sim://?speed=fast", "speed"),
        ("sim://?speed=2.5", "whole number"),
        ("sim://?fault=meteor", "unknown fault"),
        ("sim://?seed=-1", "seed"),
        ("sim://?battery=120", "battery"),
    ],
)
def test_bad_options_are_refused_with_advice(url: str, message: str) -> None:
    with pytest.raises(TransportError, match=message):
        open_transport(url)


async def test_an_unknown_model_is_refused_at_connect() -> None:
    transport = open_transport("sim://?model=no-such-band")
    with pytest.raises(TransportError, match="known models"):
        await transport.connect()


def test_options_round_trip_through_a_url() -> None:
    options = SimOptions(
        model="vibepad-v1", seed=9, speed=None, fault_specs=("drop:5", "delay:3"), battery=50
    )
    assert SimOptions.from_url(options.to_url()) == options
    assert options.faults.drop_after_ms == 5 and options.time_scale == 0


async def test_time_scale_in_info_is_the_speed() -> None:
    async with ProtocolClient(open_transport("sim://?speed=20")) as c:
        info = await c.call(Info())
        assert isinstance(info, InfoResponse) and info.time_scale == 20
    assert SimOptions.from_url("sim://?speed=20").telemetry_factor == 4
    assert SimOptions.from_url("sim://?speed=max").telemetry_factor == 1


async def test_nausea_shape_runs_whole_at_speed_max_with_every_sample() -> None:
    """How fast is a bench figure (bench/sim_speed.py); here: complete, every sample kept."""
    async with ProtocolClient(SimTransport("sim://?speed=max&seed=3")) as c:
        await c.prepare(NAUSEA)
        await c.start()
        await c.wait_event(ScheduleDone, wait_s=30)
        await c.wait_for(vent_done, wait_s=5)
    samples = c.samples()
    assert len(samples) > 4_700
    assert max(s.measured_level for s in samples) < 13_000


def _run_telemetry(samples: list[Telemetry]) -> list[tuple[object, ...]]:
    start = next(i for i, s in enumerate(samples) if s.state is S.RUNNING)
    t0 = samples[start].t_ms
    return [
        (
            s.t_ms - t0,
            s.measured_level,
            s.target_level,
            s.state,
            s.segment_index,
            s.battery_percent,
            s.flags,
        )
        for s in samples[start:]
    ]


TWENTY_S = ramp_hold_release(peak_level=8_000, ramp_ms=8_000, hold_ms=5_000, release_ms=8_000)


async def _short_session(speed: str, schedule: Schedule = SHORT) -> list[tuple[object, ...]]:
    async with ProtocolClient(SimTransport(f"sim://?speed={speed}&seed=11")) as c:
        await c.prepare(schedule)
        await c.start()
        await c.wait_for(vent_done, wait_s=60)  # loop seconds: 35 of them at speed 1
        return _run_telemetry(c.samples())


@pytest.mark.parametrize("speed", ["1", "50"])
async def test_speed_max_gives_the_same_telemetry_as_a_real_time_clock(speed: str) -> None:
    """The same event-driven model at every speed: a run in real time (speed 1: 22 s of
    device time on the loop's clock, virtual here) or at speed 50, and one at speed=max,
    give the same samples, noise included. Tolerance: none. Speed 50 sends only every 10th
    sample, so the samples both have (same time since START) are compared."""
    timed = await _short_session(speed, TWENTY_S)
    fast = await _short_session("max", TWENTY_S)
    by_time = {row[0]: row for row in fast}
    common = [row for row in timed if row[0] in by_time]
    assert len(common) > (200 if speed == "1" else 20) and len(fast) > 200
    assert common == [by_time[row[0]] for row in common]
    assert {row[3] for row in common} == {S.RUNNING, S.VENTING, S.IDLE}


async def test_watchdog_vents_after_three_wall_seconds_without_a_heartbeat() -> None:
    loop = asyncio.get_running_loop()
    async with ProtocolClient(SimTransport("sim://?speed=1")) as c:
        await c.prepare(NAUSEA)
        await c.start(heartbeat_s=None)
        silent_since = loop.time()
        fault = await c.wait_event(FaultRaised, wait_s=5)
        waited = loop.time() - silent_since
        assert fault.fault is FaultCode.WATCHDOG
        assert 2.95 < waited < 3.5
        status = await c.call(Status())
        assert isinstance(status, StatusResponse) and status.state is S.FAULT


async def test_an_accelerated_session_with_wall_clock_heartbeats_keeps_running() -> None:
    async with ProtocolClient(SimTransport("sim://?speed=40")) as c:
        await c.prepare(NAUSEA)
        await c.start(heartbeat_s=1.0)
        await asyncio.sleep(3.6)  # virtual: 144 s of device time, four heartbeats
        status = await c.call(Status())
        assert isinstance(status, StatusResponse)
        assert status.state is S.RUNNING and status.elapsed_ms > 120_000
        assert not c.events_of(FaultRaised)


async def test_reconnecting_after_a_watchdog_vent_clears_it_with_stop() -> None:
    sim = Simulation(SimOptions(speed=20))
    try:
        first = ProtocolClient(SimTransport.to(sim))
        async with first:
            await first.prepare(NAUSEA)
            await first.start(heartbeat_s=None)
            await first.wait_event(FaultRaised, wait_s=5)
        assert sim.device.firmware.state is S.FAULT
        async with ProtocolClient(SimTransport.to(sim)) as second:
            assert await second.result(SetLimits(cap_level=1_000)) is Result.HELLO_REQUIRED
            await second.call(Hello())
            await second.wait_for(lambda _: sim.device.firmware.measured < 2_000, wait_s=5)
            assert await second.result(Stop()) is Result.OK
            status = await second.call(Status())
            assert isinstance(status, StatusResponse) and status.state is S.IDLE
    finally:
        await sim.stop()


async def test_link_drop_silences_the_link_and_the_watchdog_vents() -> None:
    async with ProtocolClient(SimTransport("sim://?speed=10&fault=drop:400")) as c:
        await c.prepare(NAUSEA)
        await c.start()
        device = c.transport.device  # type: ignore[attr-defined]
        await asyncio.sleep(0.45)
        with pytest.raises(TimeoutError):
            await c.request(Status(), wait_s=0.3)
        assert device.firmware.state is S.RUNNING, "the device cannot tell yet"
        await c.wait_for(lambda _: device.firmware.state is S.FAULT, wait_s=5)
        assert device.firmware.fault is FaultCode.WATCHDOG
        assert not c.events_of(FaultRaised), "the host heard nothing: the link is down"


async def test_corrupted_frames_are_dropped_by_the_crc_never_acted_on() -> None:
    transport = SimTransport("sim://?speed=max&seed=2&fault=corrupt:0.3")
    async with ProtocolClient(transport) as c:
        answered = timeouts = 0
        for _ in range(60):
            try:
                await c.request(Status(), wait_s=0.2)
                answered += 1
            except TimeoutError:
                timeouts += 1
        assert answered > 20 and timeouts > 5
        to_device, to_host = transport.frames_rejected
        assert to_device > 0 and to_host > 0, "damage in both directions was caught"
        assert not c.undecodable, "the CRC caught every damaged frame"
        assert transport.device.firmware.state is S.IDLE


async def test_duplicated_frames_are_answered_twice_and_executed_once() -> None:
    transport = SimTransport("sim://?speed=max&fault=duplicate:1")
    async with ProtocolClient(transport) as c:
        await c.prepare(SHORT)
        await c.start()
        await c.wait_for(vent_done, wait_s=5)
    assert len(c.strays) >= len(SHORT.segments) + 3, "every response came twice"
    transitions = [(e.old, e.new) for e in c.events_of(StateChanged) if isinstance(e, StateChanged)]
    assert transitions.count((S.LOADED, S.RUNNING)) == 2, "each event was duplicated too"
    assert len(set(transitions)) == len(transitions) // 2


async def test_delayed_frames_arrive_late_and_in_order() -> None:
    loop = asyncio.get_running_loop()
    async with ProtocolClient(SimTransport("sim://?fault=delay:60")) as c:
        began = loop.time()
        await c.call(Hello())
        assert loop.time() - began >= 0.12, "60 ms each way"
        results = await asyncio.gather(*(c.request(Status(), wait_s=1) for _ in range(5)))
        assert all(isinstance(r, StatusResponse) for r in results)
        assert not c.strays


async def test_cancelling_a_simulation_while_it_stops_is_not_swallowed() -> None:
    """Regression: `stop()` waited for the clock inside `suppress(CancelledError)`, which
    also ate a cancel aimed at its caller; the caller then ran on as if not cancelled."""
    sim = Simulation(SimOptions(speed=20))
    link = SimTransport.to(sim)
    await link.connect()
    await asyncio.sleep(0.05)  # the clock is running
    stopping = asyncio.create_task(sim.stop())
    await asyncio.sleep(0)  # now inside stop(), waiting for the clock to end
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stopping.cancelled() and sim.link is None, "the link is dropped all the same"
    with pytest.raises(TransportClosed):
        await link.send(encode(Status(), 1))


async def test_cancelling_a_client_while_it_closes_is_not_swallowed() -> None:
    """Regression: `close()` waited for its reader inside `suppress(CancelledError)`."""
    sim = Simulation(SimOptions(speed=20))
    try:
        client = ProtocolClient(SimTransport.to(sim))
        await client.__aenter__()
        await client.call(Hello())
        closing = asyncio.create_task(client.close())
        await asyncio.sleep(0)  # now inside close(), waiting for the reader to end
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert closing.cancelled()
    finally:
        await sim.stop()

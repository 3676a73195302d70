"""Home Assistant's intensity dial over MQTT: it lowers a running session, never raises it."""

from __future__ import annotations

import json

import pytest

from simulator.loopback import Simulation
from simulator.options import SimOptions
from simulator.server import TcpServer
from tests.bridge_helpers import (
    GW,
    LONG,
    command,
    payload,
    result_for,
    running_bridge,
    start_body,
    topic,
    until,
)
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt


async def test_intensity_lowers_a_running_session_to_half_and_is_never_raised(
    broker: Broker,
) -> None:
    sim = Simulation(SimOptions(speed=10, seed=6))
    server = TcpServer(sim)
    port = await server.start()
    await broker.pub(
        topic("left", "cmd/intensity"), '{"request_id": "r1", "percent": 20}', retain=True
    )
    try:
        async with (
            Watcher(broker, f"acudevice/{GW}/#") as watch,
            running_bridge(
                broker, {"left": f"tcp://127.0.0.1:{port}"}, allow_remote_start=True
            ) as bridge,
        ):
            # Waiting retained on the broker from before the gateway connected: stale, ignored.
            stale = payload(await watch.wait_for(result_for("r1")))
            assert stale["status"] == "refused" and "retained" in stale["reason"]
            await broker.pub(topic("left", "cmd/intensity"), "", retain=True)  # clear it
            idle = await command(
                broker, watch, "left", "intensity", '{"request_id": "i0", "percent": 50}', "i0"
            )
            assert idle["status"] == "refused" and "no session" in idle["reason"]
            started = await command(broker, watch, "left", "start", start_body(LONG, "s1"), "s1")
            assert started["status"] == "ok", started["reason"]
            agent = bridge.agents["left"]
            assert agent.slot.view is not None
            full = agent.slot.view.full_level  # the plan's peak, in Pa
            assert full == 12_000
            await until(lambda: sim.device.true_level > 0.8 * full)
            at_start = await watch.wait_for(
                lambda s: s.topic == topic("left", "state") and payload(s)["session"] == "running"
            )
            assert payload(at_start)["intensity_percent"] == 100

            half = await command(
                broker, watch, "left", "intensity", '{"request_id": "i1", "percent": 50}', "i1"
            )
            assert half["status"] == "ok", half["reason"]
            await until(lambda: sim.device.true_level < full / 2 + 500)
            shown = await watch.wait_for(
                lambda s: (
                    s.topic == topic("left", "state") and payload(s)["intensity_percent"] == 50
                )
            )
            assert payload(shown)["cap"] == pytest.approx(full / 2 / 1000, abs=0.01)
            assert not any(
                payload(s)["event"] == "comfort" for s in watch.on(topic("left", "events"))
            )

            higher = await command(
                broker, watch, "left", "intensity", '{"request_id": "i2", "percent": 80}', "i2"
            )
            assert higher["status"] == "refused" and "only be lowered" in higher["reason"]
            same = await command(
                broker, watch, "left", "intensity", '{"request_id": "i3", "percent": 50}', "i3"
            )
            assert same["status"] == "refused"
            mark = len(watch.seen)  # QoS 1 redelivery of i1: the first answer again, not re-run
            await broker.pub(topic("left", "cmd/intensity"), '{"request_id": "i1", "percent": 50}')
            again = await watch.wait_for(result_for("i1"), since=mark)
            assert payload(again)["status"] == "ok" and payload(again)["reason"] == half["reason"]
            for body, request_id, why in [
                ({"percent": 5}, "b1", "percent"),
                ({"percent": 101}, "b2", "percent"),
                ({"percent": "30"}, "b3", "percent"),
                ({"percent": 30.0}, "b4", "percent"),
                ({}, "b5", "percent"),
                ({"percent": 30, "raise": True}, "b6", "raise"),
            ]:
                text = json.dumps({"request_id": request_id, **body})
                bad = await command(broker, watch, "left", "intensity", text, request_id)
                assert bad["status"] == "error" and why in bad["reason"], bad
            state = agent.state()
            assert state.intensity_percent == 50
            assert state.cap == pytest.approx(full / 2 / 1000, abs=0.01)
            await until(lambda: sim.device.true_level < full / 2 + 500)
            assert agent.session is not None  # still running, at half
    finally:
        await server.close()
        await sim.stop()

"""A bridge told to leave (SIGTERM, as systemd does) ends its sessions where the broker hears it."""

from __future__ import annotations

import json
import signal

import pytest

from tests.bridge_helpers import GW, LONG, bridge_process, payload, topic
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt


async def test_sigterm_ends_the_session_with_session_finished_and_a_state_that_is_not_running(
    broker: Broker,
) -> None:
    """Regression: after SIGTERM there was no `session-finished` event and the retained state
    still said `running` (Home Assistant showed a band running that nobody watched)."""
    async with Watcher(broker, f"acudevice/{GW}/#") as watch:
        bridge = bridge_process(
            broker, "--device", "left=sim://?speed=10&seed=3", "--fleet-run", LONG
        )
        try:
            await watch.wait_for(
                lambda s: s.topic == topic("left", "state") and payload(s)["session"] == "running",
                within_s=30,
            )
            bridge.send_signal(signal.SIGTERM)
            finished = payload(
                await watch.wait_for(
                    lambda s: (
                        s.topic == topic("left", "events")
                        and payload(s)["event"] == "session-finished"
                    ),
                    within_s=30,
                )
            )
            assert bridge.wait(30) == 0, bridge.stderr.read() if bridge.stderr else ""
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait()
    assert finished["outcome"] == "stopped"
    assert "the bridge shut down" in finished["detail"], "the stop's real cause"
    retained = await broker.retained(f"acudevice/{GW}/#")
    assert json.loads(retained[topic("left", "state")])["session"] != "running"
    assert retained[f"acudevice/{GW}/status"] == "offline"
    assert retained[topic("left", "availability")] == "offline"

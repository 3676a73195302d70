"""Two bridges with one gateway id (two Raspberry Pis from one image): one is refused, no flapping."""

from __future__ import annotations

import asyncio

import pytest

from acudevice.bridge.gateway import Bridge, BridgeOptions
from acudevice.bridge.mqtt import BrokerAddress
from acudevice.bridge.ownership import GatewayTaken
from tests.bridge_helpers import GW, bridge_process, payload, running_bridge
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt


async def test_a_second_bridge_with_the_same_gateway_id_is_refused_and_the_first_keeps_its_link(
    broker: Broker,
) -> None:
    async with (
        running_bridge(broker, {"left": "sim://?speed=10&seed=1"}) as first,
        Watcher(broker, f"acudevice/{GW}/#") as watch,
    ):
        mark = len(watch.seen)
        second = bridge_process(broker, "--device", "right=sim://?speed=10")
        code = await asyncio.to_thread(second.wait, 30)
        stderr = second.stderr.read() if second.stderr else ""
        assert code == 2, stderr
        assert "already served by another bridge" in stderr and "--gateway" in stderr
        assert "Traceback" not in stderr
        await asyncio.sleep(0.3)  # anything the broker did to the first bridge shows by now
        assert first.connected.is_set()
        later = [s.topic.rsplit("/", 1)[-1] for s in watch.seen[mark:]]
        assert "status" not in later, "the first bridge was never dropped: no status change"
        assert not [
            s
            for s in watch.seen[mark:]
            if s.topic.endswith("/events") and payload(s)["event"] == "broker-outage"
        ]
        retained = await broker.retained(f"acudevice/{GW}/#")
        assert retained[f"acudevice/{GW}/status"] == "online"


async def test_two_bridges_started_together_settle_on_one(broker: Broker) -> None:
    def bridge(band: str) -> Bridge:
        return Bridge(
            BridgeOptions(
                broker=BrokerAddress.parse(broker.url),
                gateway=GW,
                bands={band: "sim://?speed=10"},
                backoff_initial_s=0.2,
                backoff_max_s=0.5,
            )
        )

    bridges = [bridge("left"), bridge("right")]
    tasks = [asyncio.create_task(b.run()) for b in bridges]
    try:
        async with asyncio.timeout(30):
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        [ended] = done
        assert isinstance(ended.exception(), GatewayTaken)
        survivor = bridges[1 - tasks.index(ended)]
        async with asyncio.timeout(10):
            await survivor.connected.wait()
        # The other stopped for good (it raised, it does not retry): nothing is left to take
        # the client id back, so the survivor keeps it.
        assert survivor.connected.is_set()
        assert not [t for t in tasks if t is not ended and t.done()]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

"""Home Assistant device discovery, read back with mosquitto_sub; and the ACL generator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from acudevice.bridge.acl import acl_text
from acudevice.bridge.gateway import Bridge, BridgeOptions
from acudevice.bridge.mqtt import BrokerAddress
from tests.bridge_helpers import GW, running_bridge
from tests.mqtt_broker import Broker, Watcher, free_port
from tests.sim_server import serve

pytestmark = pytest.mark.mqtt
BANDS = {"left": "sim://?speed=10&seed=1", "pad": "sim://?speed=10&seed=2&model=vibepad-v1"}


def configs(retained: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {t: json.loads(p) for t, p in retained.items() if t.endswith("/config") and p}


async def discovered(broker: Broker, count: int) -> dict[str, dict[str, Any]]:
    async with Watcher(broker, "homeassistant/#") as watch:
        await watch.wait_for(
            lambda _: len({s.topic for s in watch.seen if s.topic.endswith("/config")}) >= count
        )
    return configs(await broker.retained("homeassistant/#"))


async def test_discovery_payloads_are_valid_with_required_keys_and_unique_ids(
    broker: Broker,
) -> None:
    async with running_bridge(broker, BANDS, ha_discovery=True):
        found = await discovered(broker, 3)
    assert len(found) == 3  # the gateway and two bands
    unique_ids: list[str] = []
    for topic, config in found.items():
        assert topic.startswith(f"homeassistant/device/acudevice_{GW}/")
        assert config["origin"]["name"] == "acudevice"
        assert config["device"]["identifiers"]
        for component in config["components"].values():
            assert component["platform"] and component["unique_id"]
            unique_ids.append(component["unique_id"])
    assert len(unique_ids) == len(set(unique_ids))
    band = found[f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_left/config"]
    assert band["device"]["via_device"] == f"acudevice_{GW}"
    assert band["availability_mode"] == "all"
    assert [a["topic"] for a in band["availability"]] == [
        f"acudevice/{GW}/status",
        f"acudevice/{GW}/left/availability",
    ]
    platforms = {c["platform"]: c for c in band["components"].values()}
    assert platforms["sensor"]["device_class"] in ("pressure", "battery")
    pressure = next(c for c in band["components"].values() if c.get("device_class") == "pressure")
    assert pressure["unit_of_measurement"] == "kPa" and pressure["state_class"] == "measurement"
    assert platforms["binary_sensor"]["device_class"] == "running"
    assert platforms["button"]["command_topic"] == f"acudevice/{GW}/left/cmd/stop"
    assert "select" not in platforms  # the start control only exists with remote start
    dial = platforms["number"]
    assert dial["unique_id"] == f"acudevice_{GW}_left_intensity_level"
    assert dial["command_topic"] == f"acudevice/{GW}/left/cmd/intensity"
    assert dial["state_topic"] == f"acudevice/{GW}/left/state"
    assert (dial["min"], dial["max"], dial["step"], dial["mode"]) == (10, 100, 5, "slider")
    assert dial["unit_of_measurement"] == "%" and "percent" in dial["command_template"]
    pad = found[f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_pad/config"]
    assert not any(c.get("device_class") == "pressure" for c in pad["components"].values())


async def test_remote_start_announces_the_program_select_and_ha_birth_republishes(
    broker: Broker,
) -> None:
    async with running_bridge(
        broker, {"left": BANDS["left"]}, ha_discovery=True, allow_remote_start=True
    ) as bridge:
        found = await discovered(broker, 2)
        band = found[f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_left/config"]
        select = next(c for c in band["components"].values() if c["platform"] == "select")
        assert "nausea-relief" in select["options"]
        assert select["command_topic"] == f"acudevice/{GW}/left/cmd/start"
        async with Watcher(broker, "homeassistant/device/#") as watch:
            mark = len(watch.seen)
            await broker.pub("homeassistant/status", "online")  # Home Assistant restarted
            again = await watch.wait_for(
                lambda s: s.topic.endswith("/config") and not s.retained, since=mark
            )
            assert json.loads(again.payload)["device"]
        await bridge.forget("left")
        left = await broker.retained("homeassistant/#")
        assert f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_left/config" not in left


def test_acl_gives_each_gateway_its_own_prefix_and_start_to_the_operator_only() -> None:
    text = acl_text(["gw-a", "gw-b"])
    sections = {block.split("\n", 1)[0]: block for block in text.split("\n\n")}
    assert "topic write acudevice/gw-a/#" in sections["user gw-a"]
    assert "acudevice/gw-b" not in sections["user gw-a"]
    assert "topic write acudevice/+/+/cmd/start" not in sections["user homeassistant"].splitlines()
    assert "topic write acudevice/+/+/cmd/start-scheduled" in sections["user homeassistant"]
    assert "topic write acudevice/+/+/cmd/stop" in sections["user homeassistant"]
    assert "topic write acudevice/+/+/cmd/intensity" in sections["user homeassistant"]
    assert "topic write acudevice/+/+/cmd/intensity" in sections["user operator"]
    assert "topic read acudevice/gw-a/+/cmd/#" in sections["user gw-a"]
    assert "topic write acudevice/+/+/cmd/start" in sections["user operator"]


async def test_a_band_that_connects_after_the_announcement_is_announced_again_as_what_it_is(
    broker: Broker,
) -> None:
    """The pad's simulator starts only after the gateway announced it (model unknown then):
    once it connects, its config names it and offers no pressure sensor."""
    port = free_port()
    bridge = Bridge(
        BridgeOptions(
            broker=BrokerAddress.parse(broker.url),
            gateway=GW,
            bands={"pad": f"tcp://127.0.0.1:{port}"},
            ha_discovery=True,
            backoff_initial_s=0.2,
        )
    )
    task = asyncio.create_task(bridge.run())
    pad_topic = f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_pad/config"
    try:
        early = (await discovered(broker, 2))[pad_topic]
        assert early["device"]["model"] == "band", "announced before the pad ever answered"
        async with Watcher(broker, "homeassistant/#") as watch:
            with serve("--tcp", str(port), "--model", "vibepad-v1"):
                seen = await watch.wait_for(
                    lambda m: (
                        m.topic == pad_topic
                        and json.loads(m.payload)["device"]["model"] == "vibepad-v1"
                    )
                )
        late = json.loads(seen.payload)
        assert not any(c.get("device_class") == "pressure" for c in late["components"].values())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

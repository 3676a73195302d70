"""An in-process bridge on simulated bands, against a test broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from acudevice.bridge.gateway import Bridge, BridgeOptions
from acudevice.bridge.mqtt import BrokerAddress
from acudevice.paths import user_programs_dir
from acudevice.store import Journal
from tests.mqtt_broker import Broker, Seen, Watcher

GW = "gw1"
LONG = "nausea-relief"  # 8 device minutes: still running whenever a test looks
QUICK_TOML = """
name = "quick-test"
title = "Quick test"
description = "A short pressure program for tests."
indication = "tests"
actuator = "pressure"
repeats = 1

[[sites]]
point = "PC6"
side = "left"

[[phases]]
kind = "ramp"
duration_s = 10
target_kpa = 6.0

[[phases]]
kind = "hold"
duration_s = 2

[[phases]]
kind = "release"
duration_s = 10
"""


def install_quick_program() -> Path:
    """quick-test (24 s, passes screening) and abrupt-test (needs a soft-limit confirmation)."""
    directory = user_programs_dir()
    directory.mkdir(parents=True, exist_ok=True)
    abrupt = QUICK_TOML.replace("quick-test", "abrupt-test").replace(
        "duration_s = 10", "duration_s = 5"
    )
    (directory / "abrupt-test.toml").write_text(abrupt)
    path = directory / "quick-test.toml"
    path.write_text(QUICK_TOML)
    return path


@contextlib.asynccontextmanager
async def running_bridge(
    broker: Broker, bands: dict[str, str], *, journal: Journal | None = None, **options: Any
) -> AsyncIterator[Bridge]:
    """With a `journal`, the bridge journals its sessions and sends their records."""
    opts = BridgeOptions(
        broker=BrokerAddress.parse(broker.url),
        gateway=GW,
        bands=bands,
        **{"backoff_initial_s": 0.2, **options},
    )
    bridge = Bridge(opts, journal=journal)
    task = asyncio.create_task(bridge.run())
    try:
        async with asyncio.timeout(20):
            await bridge.connected.wait()
            for agent in bridge.agents.values():
                await agent.connected.wait()
        yield bridge
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def topic(band: str, leaf: str) -> str:
    return f"acudevice/{GW}/{band}/{leaf}"


def start_body(program: str, request_id: str, *, age_s: float = 0.0) -> str:
    return json.dumps(
        {"request_id": request_id, "issued_at": time.time() - age_s, "program": program}
    )


def result_for(request_id: str) -> Any:
    def match(seen: Seen) -> bool:
        return (
            seen.topic.endswith("/cmd/result")
            and json.loads(seen.payload).get("request_id") == request_id
        )

    return match


def payload(seen: Seen) -> dict[str, Any]:
    data = json.loads(seen.payload)
    assert isinstance(data, dict)
    return data


async def command(
    broker: Broker,
    watcher: Watcher,
    band: str,
    verb: str,
    body: str,
    request_id: str,
    *,
    retain: bool = False,
) -> dict[str, Any]:
    """Send a command with mosquitto_pub and wait for its reply on cmd/result."""
    await broker.pub(topic(band, f"cmd/{verb}"), body, retain=retain)
    return payload(await watcher.wait_for(result_for(request_id)))


async def until(condition: object, within_s: float = 20.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - polls simulator state, which has no event
            await asyncio.sleep(0.02)


def bridge_command(broker: Broker, *args: str) -> list[str]:
    """`acudevice bridge` as a person or a service manager starts it, on gateway GW."""
    return [
        sys.executable,
        "-m",
        "acudevice.cli",
        "bridge",
        "--broker",
        broker.url,
        "--gateway",
        GW,
        *args,
    ]


def bridge_process(broker: Broker, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        bridge_command(broker, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

"""Batched telemetry: every band's samples of a window in one message, in order, with no gap."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from acudevice.bridge.telemetry import FIELDS, BatchPayload, TelemetryBatcher, schema_json
from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import Telemetry
from tests.bridge_helpers import GW, LONG, running_bridge
from tests.mqtt_broker import Broker, Watcher

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "telemetry_subscriber.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("telemetry_subscriber", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _sample(t_ms: int, measured: int = 12_000) -> Telemetry:
    return Telemetry(
        t_ms=t_ms,
        measured_level=measured,
        target_level=12_000,
        state=FirmwareState.RUNNING,
        segment_index=2,
        battery_percent=90,
        flags=0,
    )


@pytest.mark.unit
def test_a_batch_holds_every_sample_of_its_window_and_numbers_the_batches() -> None:
    now = [1000.0]
    batcher = TelemetryBatcher("kitchen", run="r1", clock=lambda: now[0])
    now[0] = 1000.1
    assert batcher.flush() is None  # nothing in the window: nothing to send, a new window
    batcher.add("left", _sample(500))
    now[0] = 1000.15
    batcher.add("right", _sample(700, 3_000))
    batcher.add("left", _sample(600))
    now[0] = 1000.2
    first = batcher.flush(dropped=3)
    assert first is not None and first.samples == 3 and first.seq == 0
    body = BatchPayload.model_validate_json(first.payload)  # the documented schema
    assert body.run == "r1" and body.t0 == 1000.1 and body.sent == 1000.2 and body.dropped == 3
    assert body.fields == list(FIELDS)
    assert body.bands == {
        "left": [(0, 500, 12.0, 12.0, "RUNNING", 2, 90), (50, 600, 12.0, 12.0, "RUNNING", 2, 90)],
        "right": [(50, 700, 3.0, 12.0, "RUNNING", 2, 90)],
    }
    batcher.add("left", _sample(700))
    second = batcher.flush()
    assert second is not None and second.seq == 1 and second.samples == 1


@pytest.mark.unit
def test_the_example_subscriber_decodes_a_batch_and_counts_missing_ones() -> None:
    example = _example()
    now = [50.0]
    batcher = TelemetryBatcher("kitchen", run="r1", clock=lambda: now[0])
    gaps = example.GapDetector()
    payloads = []
    for i in range(5):
        batcher.add("left", _sample(100 * i))
        now[0] += 0.1
        batch = batcher.flush()
        assert batch is not None
        payloads.append(batch.payload)
    header, samples = example.decode(payloads[0])
    assert header["seq"] == 0 and header["samples"] == 1
    assert [(s.band, s.t_ms, s.measured, s.state) for s in samples] == [
        ("left", 0, 12.0, "RUNNING")
    ]
    assert samples[0].received == pytest.approx(50.0)
    assert [gaps.check(example.decode(p)[0]) for p in (payloads[0], payloads[1], payloads[4])] == [
        0,
        0,
        2,
    ]
    restarted = json.loads(payloads[0]) | {"run": "r2"}
    assert gaps.check(restarted) == 0 and gaps.restarts == 1 and gaps.missed == 2


@pytest.mark.mqtt
async def test_a_subscriber_reassembles_every_bands_samples_in_order_with_no_gap(
    broker: Broker,
) -> None:
    """Three bands run sessions (10 Hz each); per-band telemetry at 10 Hz passes every
    sample, so the batches must hold each of those samples, in order, in consecutive batches."""
    example = _example()
    bands = {f"b{i}": f"sim://?seed={i}" for i in range(3)}
    async with running_bridge(broker, bands, telemetry_hz=10, batch_window_ms=50) as bridge:
        for band in bands:
            await bridge.start_local(band, LONG)
        script = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--port",
            str(broker.port),
            "--gateway",
            GW,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with Watcher(broker, f"acudevice/{GW}/#") as watch:
                batch_topic = f"acudevice/{GW}/telemetry"
                await watch.wait_for(lambda _: len(watch.on(batch_topic)) >= 20)
                for band in bands:  # and enough per-band telemetry to compare with
                    await watch.wait_for(
                        lambda _, b=band: len(watch.on(f"acudevice/{GW}/{b}/telemetry")) >= 10
                    )
            assert script.stdout is not None
            async with asyncio.timeout(10):
                line = (await script.stdout.readline()).decode()
            assert line.startswith(f"{GW} b") and "RUNNING" in line  # the example runs
        finally:
            script.terminate()
            _, errors = await script.communicate()
        assert b"missed" not in errors

    gaps = example.GapDetector()
    batched: dict[str, list[tuple[int, float, float]]] = {band: [] for band in bands}
    batches = watch.on(f"acudevice/{GW}/telemetry")
    assert len(batches) >= 20
    for seen in batches:
        header, samples = example.decode(seen.payload)
        BatchPayload.model_validate(header)
        assert gaps.check(header) == 0 and header["dropped"] == 0
        for s in samples:
            batched[s.band].append((s.t_ms, s.measured, s.target))
    seqs = [json.loads(s.payload)["seq"] for s in batches]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for band in bands:
        times = [t for t, _, _ in batched[band]]
        assert times == sorted(times) and len(set(times)) == len(times), band
        per_band = [json.loads(s.payload) for s in watch.on(f"acudevice/{GW}/{band}/telemetry")]
        assert len(per_band) >= 10
        inside = [p for p in per_band if times[0] <= p["t_ms"] <= times[-1]]
        assert inside and {(p["t_ms"], p["measured"], p["target"]) for p in inside} <= set(
            batched[band]
        )


@pytest.mark.unit
def test_the_documented_json_schema_is_the_one_the_gateway_follows() -> None:
    documented = (ROOT / "docs" / "telemetry-batch.schema.json").read_text()
    assert documented == schema_json(), (
        "regenerate: python -c 'from acudevice.bridge.telemetry import schema_json; "
        'print(schema_json(), end="")\' > docs/telemetry-batch.schema.json'
    )

"""MQTT fleet: N bands at 10 Hz through one bridge and a local Mosquitto. Prints figures only.

Two rows per size, each bridge in its own process, measured from outside:
- `full`: `acudevice bridge --sim-fleet N --telemetry-hz 10 --fleet-run PROGRAM`: simulated
  bands, sessions (monitor, journal) and the MQTT path, all in the one measured process.
- `mqtt`: the bridge's publishing path alone (agents fed 10 Hz samples, no simulator, no
  session), which is what the bridge adds on top of running the bands.
A subscriber here counts telemetry and measures latency from the bridge's receipt of each
sample (`ts` in the payload) to its arrival here.

    python bench/mqtt_fleet.py            # 100 and 1000 bands
    python bench/mqtt_fleet.py 250        # one size
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARMUP_S = 15.0
MEASURE_S = 10.0
PROGRAM = "nausea-relief"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_conf(port: int) -> str:
    lines = [
        f"listener {port} 127.0.0.1",
        "set_tcp_nodelay true",  # else small messages can wait ~40 ms on a delayed ACK
        "allow_anonymous true",
        "persistence false",
        "max_queued_messages 100000",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    return "\n".join(lines) + "\n"


def start_broker(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port))
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(port: int, pid: int, bands: int) -> dict[str, Any]:
    # The subscriber is mosquitto_sub (C): a Python MQTT client tops out below 10k msgs/s.
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-t",
        "acudevice/bench/+/telemetry",
        "-F",
        "%p",
        stdout=asyncio.subprocess.PIPE,
    )
    assert sub.stdout is not None
    latencies: list[float] = []
    count = 0
    measuring = False

    async def consume() -> None:
        nonlocal count
        assert sub.stdout is not None
        async for line in sub.stdout:
            if measuring:
                count += 1
                latencies.append(time.time() - json.loads(line)["ts"])

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(WARMUP_S)
    cpu0, t0, me0 = cpu_s(pid), time.monotonic(), time.process_time()
    measuring = True
    await asyncio.sleep(MEASURE_S)
    measuring = False
    cpu1, t1, me1 = cpu_s(pid), time.monotonic(), time.process_time()
    consumer.cancel()
    sub.terminate()
    await sub.wait()
    print(
        f"  ({bands} bands: subscriber process CPU {(me1 - me0) / (t1 - t0):.0%})", file=sys.stderr
    )
    latencies.sort()
    return {
        "bands": bands,
        "msgs_per_s": count / (t1 - t0),
        "expected_per_s": bands * 10.0,
        "latency_median_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "latency_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]
        if latencies
        else float("nan"),
        "bridge_cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "bridge_rss_mb": rss_mb(pid),
    }


async def publish_only(port: int, bands: int) -> None:
    """Child process: a bridge whose agents are fed samples at 10 Hz, as if from bands."""
    from acudevice.bridge.band import AgentSettings, BandAgent
    from acudevice.bridge.gateway import Bridge, BridgeOptions
    from acudevice.bridge.mqtt import BrokerAddress
    from acudevice.protocol import FirmwareState
    from acudevice.protocol.messages import Telemetry

    options = BridgeOptions(BrokerAddress("127.0.0.1", port, False), "bench", {}, telemetry_hz=10)
    bridge = Bridge(options)
    runner = asyncio.create_task(bridge.run())
    await bridge.connected.wait()
    settings = AgentSettings(telemetry_hz=10)
    agents = [BandAgent(f"b{i:04d}", "sim://", bridge, settings) for i in range(bands)]
    t_ms = 0
    while not runner.done():  # each 100 ms tick: one sample per band, spread over the tick
        tick = time.monotonic()
        for i, agent in enumerate(agents):
            sample = Telemetry(
                t_ms=t_ms,
                measured_level=12_000 + i,
                target_level=12_000,
                state=FirmwareState.RUNNING,
                segment_index=1,
                battery_percent=90,
                flags=0,
            )
            agent._telemetry(sample)  # the entry point a band's stream uses
            if i % 50 == 49:
                await asyncio.sleep(0)
        t_ms += 100
        await asyncio.sleep(max(0.0, tick + 0.1 - time.monotonic()))


def run(bands: int, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_broker(Path(tmp))
        env = {**os.environ, "ACUDEVICE_HOME": str(Path(tmp) / "home")}
        url = f"mqtt://127.0.0.1:{port}"
        if mode == "full":
            command = [sys.executable, "-m", "acudevice.cli", "bridge", "--broker", url]
            command += ["--gateway", "bench", "--sim-fleet", str(bands), "--telemetry-hz", "10"]
            command += ["--fleet-run", PROGRAM]
        else:
            command = [sys.executable, __file__, "--publish-only", str(port), str(bands)]
        bridge = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            return {**asyncio.run(measure(port, bridge.pid, bands)), "mode": mode}
        finally:
            bridge.terminate()
            try:
                bridge.wait(60)
            except subprocess.TimeoutExpired:
                bridge.kill()
            broker.terminate()
            broker.wait(10)


def main() -> None:
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed (make bench installs it)")
    if sys.argv[1:2] == ["--publish-only"]:
        asyncio.run(publish_only(int(sys.argv[2]), int(sys.argv[3])))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000]
    results = [run(n, mode) for n in sizes for mode in ("full", "mqtt")]
    print(
        f"{'mode':>5} {'bands':>6} {'msgs/s':>9} {'expected':>9} {'median ms':>10} {'p99 ms':>8}"
        f" {'CPU':>6} {'RSS MB':>7} {'MB/band':>8}"
    )
    for r in results:
        print(
            f"{r['mode']:>5} {r['bands']:>6} {r['msgs_per_s']:>9.0f} {r['expected_per_s']:>9.0f}"
            f" {r['latency_median_ms']:>10.1f} {r['latency_p99_ms']:>8.1f} {r['bridge_cpu_share']:>6.0%}"
            f" {r['bridge_rss_mb']:>7.0f} {r['bridge_rss_mb'] / r['bands']:>8.2f}"
        )
    for mode in ("full", "mqtt"):
        rows = [r for r in results if r["mode"] == mode]
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            slope = (b["bridge_rss_mb"] - a["bridge_rss_mb"]) / (b["bands"] - a["bands"])
            print(f"{mode}: memory per additional band {slope * 1024:.0f} KB")


if __name__ == "__main__":
    main()

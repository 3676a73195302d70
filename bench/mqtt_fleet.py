"""MQTT fleet: N bands at 10 Hz through one gateway process and a local Mosquitto. Prints figures.

Modes, each gateway in its own process, measured from outside (its CPU from /proc):
- `full`: `acudevice bridge --sim-fleet N --fleet-run PROGRAM`: simulated bands, sessions
  (monitor, journal) and the MQTT path, all in the one measured process.
- `mqtt`: the gateway's publishing path alone: agents fed 10 Hz samples (no simulator, no
  session), batched per window plus per-band telemetry at the default 1 Hz.
- `old` (with `--old-path`): the path this replaced, for a same-run ratio: one message per
  sample per band, each awaited through aiomqtt's `publish` by 8 writers, without
  TCP_NODELAY on either hop.
A subscriber (mosquitto_sub, in C) counts samples and measures each one's age: from the
gateway's receipt of the sample (`t0 + rx_ms` in a batch, `ts` per band) to its arrival here,
so the batching window is part of the latency.

    python bench/mqtt_fleet.py                    # 100 and 1000 bands, full and mqtt
    python bench/mqtt_fleet.py 1000 --json        # one JSON object per line per mode
    python bench/mqtt_fleet.py 1000 --old-path --window-ms 10

JSON keys: mode, bands, msgs_per_s (samples delivered a second), expected, p50_ms, p99_ms,
p99_sent_ms (from the batch's making, without the window), cpu_percent (of one core), rss_mb,
connect_s (start to every band online; mqtt/old: to the gateway online), running_s (full: to
every band sending RUNNING samples), bands_running (full: bands seen running when the
measurement began; it begins when all run, or when none started for 20 s), dropped (samples the gateway counted as dropped), gaps
(batches missing at the subscriber), window_ms, load (1-minute load average at the start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import Telemetry

WARMUP_S = 3.0
MEASURE_S = 10.0
START_LIMIT_S = 180.0
STALLED_S = 20.0
"""full: measure once every band runs, or when no band has started running for this long."""
PROGRAM = "nausea-relief"
GATEWAY = "bench"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_conf(port: int, *, nodelay: bool = True) -> str:
    lines = [f"listener {port} 127.0.0.1"]
    if nodelay:
        lines.append("set_tcp_nodelay true")  # else small messages can wait ~40 ms on a delayed ACK
    lines += ["allow_anonymous true", "persistence false", "max_queued_messages 100000"]
    if os.geteuid() == 0:
        lines.append("user root")
    return "\n".join(lines) + "\n"


def start_broker(tmp: Path, *, nodelay: bool = True) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port, nodelay=nodelay))
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


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[int(q * (len(values) - 1))]


class Subscriber:
    """mosquitto_sub on the gateway's topics: counts samples, ages, gaps, bands seen."""

    def __init__(self, port: int, bands: int, mode: str) -> None:
        self.port, self.bands, self.mode = port, bands, mode
        self.measuring = False
        self.samples = 0
        self.ages: list[float] = []
        self.sent_ages: list[float] = []
        self.online: set[str] = set()
        self.running: set[str] = set()
        self.online_at: float | None = None
        self.running_at: float | None = None
        self.last_new_running = time.time()
        self.gateway_at: float | None = None
        self.dropped = 0
        self.gaps = 0
        self._last_seq: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        telemetry = "+/telemetry" if self.mode == "old" else "telemetry"
        self._proc = await asyncio.create_subprocess_exec(
            "mosquitto_sub",
            *("-h", "127.0.0.1", "-p", str(self.port)),
            *("-t", f"acudevice/{GATEWAY}/{telemetry}"),
            *("-t", f"acudevice/{GATEWAY}/+/availability", "-t", f"acudevice/{GATEWAY}/status"),
            *("-F", "%t\t%p"),
            stdout=asyncio.subprocess.PIPE,
            limit=64 << 20,
        )
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            now = time.time()
            topic, _, body = raw.decode().rstrip("\n").partition("\t")
            leaf = topic.rsplit("/", 1)[-1]
            if leaf == "availability":
                if body == "online":
                    self.online.add(topic)
                    if len(self.online) == self.bands and self.online_at is None:
                        self.online_at = now
            elif leaf == "status":
                if body == "online" and self.gateway_at is None:
                    self.gateway_at = now
            elif topic.endswith(f"{GATEWAY}/telemetry"):
                self._batch(json.loads(body), now)
            elif self.measuring:  # old path: one sample per message
                self.samples += 1
                self.ages.append(now - json.loads(body)["ts"])

    def _batch(self, batch: dict[str, Any], now: float) -> None:
        if self._last_seq is not None and batch["seq"] > self._last_seq + 1 and self.measuring:
            self.gaps += batch["seq"] - self._last_seq - 1
        self._last_seq = batch["seq"]
        self.dropped = batch["dropped"]
        if self.running_at is None:
            for band, rows in batch["bands"].items():
                if rows[-1][4] == "RUNNING" and band not in self.running:
                    self.running.add(band)
                    self.last_new_running = now
            if len(self.running) == self.bands:
                self.running_at = now
        if not self.measuring:
            return
        t0, sent_age = batch["t0"], now - batch["sent"]
        for rows in batch["bands"].values():
            self.samples += len(rows)
            for row in rows:
                self.ages.append(now - (t0 + row[0] / 1000))
                self.sent_ages.append(sent_age)


async def measure(
    port: int, pid: int, bands: int, mode: str, started: float, window_ms: int, measure_s: float
) -> dict[str, Any]:
    sub = Subscriber(port, bands, mode)
    await sub.start()
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:  # everything up (full: every band running)
        if mode == "full" and (
            sub.running_at is not None
            or (sub.running and time.time() - sub.last_new_running > STALLED_S)
        ):
            break
        if mode != "full" and sub.gateway_at is not None:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(WARMUP_S)
    dropped0 = sub.dropped
    cpu0, t0 = cpu_s(pid), time.monotonic()
    sub.measuring = True
    await asyncio.sleep(measure_s)
    sub.measuring = False
    cpu1, t1 = cpu_s(pid), time.monotonic()
    rss = rss_mb(pid)
    await sub.stop()
    p50, p99 = percentile(sub.ages, 0.5), percentile(sub.ages, 0.99)
    p99_sent = percentile(sub.sent_ages, 0.99)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(1000 * v, 1)

    def since_start(v: float | None) -> float | None:
        return None if v is None else round(v - started, 2)

    return {
        "mode": mode,
        "bands": bands,
        "msgs_per_s": round(sub.samples / (t1 - t0), 1),
        "expected": bands * 10.0,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "p99_sent_ms": ms(p99_sent),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "rss_mb": round(rss, 1),
        "connect_s": since_start(sub.online_at if mode == "full" else sub.gateway_at),
        "running_s": since_start(sub.running_at) if mode == "full" else None,
        "bands_running": len(sub.running) if mode == "full" else None,
        "dropped": None if mode == "old" else sub.dropped - dropped0,
        "gaps": None if mode == "old" else sub.gaps,
        "window_ms": None if mode == "old" else window_ms,
        "load": round(os.getloadavg()[0], 2),
    }


def _sample(i: int, t_ms: int) -> Telemetry:
    return Telemetry(
        t_ms=t_ms,
        measured_level=12_000 + i,
        target_level=12_000,
        state=FirmwareState.RUNNING,
        segment_index=1,
        battery_percent=90,
        flags=0,
    )


async def _feed(agents: list[Any], stop: asyncio.Future[None] | asyncio.Task[None]) -> None:
    """Each 100 ms tick: one sample per band, spread over the tick."""
    t_ms = 0
    while not stop.done():
        tick = time.monotonic()
        for i, agent in enumerate(agents):
            agent._telemetry(_sample(i, t_ms))  # the entry point a band's stream uses
            if i % 50 == 49:
                await asyncio.sleep(0)
        t_ms += 100
        await asyncio.sleep(max(0.0, tick + 0.1 - time.monotonic()))


async def publish_only(port: int, bands: int, window_ms: int) -> None:
    """Child process, `mqtt` mode: the gateway's path, fed 10 Hz samples as if from bands."""
    from acudevice.bridge.band import AgentSettings, BandAgent
    from acudevice.bridge.gateway import Bridge, BridgeOptions
    from acudevice.bridge.mqtt import BrokerAddress

    options = BridgeOptions(
        BrokerAddress("127.0.0.1", port, False), GATEWAY, {}, batch_window_ms=window_ms
    )
    bridge = Bridge(options)
    runner = asyncio.create_task(bridge.run())
    await bridge.connected.wait()
    settings = AgentSettings(telemetry_hz=options.telemetry_hz, batcher=bridge.batcher)
    agents = [BandAgent(f"b{i:04d}", "sim://", bridge, settings) for i in range(bands)]
    await _feed(agents, runner)


class OldOutlet:
    """The replaced path: a queue of per-band messages, 8 writers each awaiting publish()."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.queue: asyncio.Queue[tuple[str, str, int, bool]] = asyncio.Queue(20_000)

    def publish(self, leaf: str, band: str, payload: str, *, qos: int, retain: bool) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # the old gateway dropped it too
            self.queue.put_nowait((f"acudevice/{GATEWAY}/{band}/{leaf}", payload, qos, retain))

    def event(self, payload: Any) -> None:
        pass

    def band_connected(self, band: str) -> None:
        pass

    async def writer(self) -> None:
        while True:
            topic, payload, qos, retain = await self.queue.get()
            await self.client.publish(topic, payload, qos=qos, retain=retain)


async def publish_old(port: int, bands: int) -> None:
    """Child process, `old` mode: aiomqtt awaited per message, no TCP_NODELAY."""
    import aiomqtt

    from acudevice.bridge.band import AgentSettings, BandAgent

    async with aiomqtt.Client("127.0.0.1", port, identifier=GATEWAY) as client:
        await client.publish(f"acudevice/{GATEWAY}/status", "online", qos=1, retain=True)
        outlet = OldOutlet(client)
        writers = [asyncio.create_task(outlet.writer()) for _ in range(8)]
        settings = AgentSettings(telemetry_hz=10)
        agents = [BandAgent(f"b{i:04d}", "sim://", outlet, settings) for i in range(bands)]
        await _feed(agents, asyncio.gather(*writers))


def run(bands: int, mode: str, window_ms: int, measure_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_broker(Path(tmp), nodelay=mode != "old")
        env = {**os.environ, "ACUDEVICE_HOME": str(Path(tmp) / "home")}
        url = f"mqtt://127.0.0.1:{port}"
        if mode == "full":
            command = [sys.executable, "-m", "acudevice.cli", "bridge", "--broker", url]
            command += ["--gateway", GATEWAY, "--sim-fleet", str(bands)]
            command += ["--batch-window-ms", str(window_ms), "--fleet-run", PROGRAM]
        else:
            command = [sys.executable, __file__, f"--child-{mode}", str(port), str(bands)]
            command += ["--window-ms", str(window_ms)]
        started = time.time()
        bridge = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            return asyncio.run(
                measure(port, bridge.pid, bands, mode, started, window_ms, measure_s)
            )
        finally:
            bridge.terminate()
            try:
                bridge.wait(60)
            except subprocess.TimeoutExpired:
                bridge.kill()
            broker.terminate()
            broker.wait(10)


def _cell(value: Any, fmt: str) -> str:
    width = int("".join(c for c in fmt.split(".")[0] if c.isdigit()) or 0)
    return "-".rjust(width) if value is None else format(value, fmt)


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'mode':>5} {'bands':>6} {'running':>7} {'samples/s':>10} {'expected':>9} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'CPU %':>6} {'RSS MB':>7} {'connect s':>9} {'running s':>9}"
        f" {'dropped':>8} {'gaps':>5} {'load':>5}"
    ]
    for r in results:
        lines.append(
            f"{r['mode']:>5} {r['bands']:>6} {_cell(r['bands_running'], '7d')}"
            f" {r['msgs_per_s']:>10.0f} {r['expected']:>9.0f}"
            f" {_cell(r['p50_ms'], '8.1f')} {_cell(r['p99_ms'], '8.1f')} {r['cpu_percent']:>6.1f}"
            f" {r['rss_mb']:>7.0f} {_cell(r['connect_s'], '9.1f')} {_cell(r['running_s'], '9.1f')}"
            f" {_cell(r['dropped'], '8d')} {_cell(r['gaps'], '5d')} {r['load']:>5.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="MQTT fleet benchmark")
    parser.add_argument("bands", nargs="*", type=int)
    parser.add_argument("--json", action="store_true", help="one JSON object per line per mode")
    parser.add_argument("--old-path", action="store_true", help="also measure the replaced path")
    parser.add_argument("--modes", default=None, help="comma-separated: full,mqtt,old")
    parser.add_argument("--window-ms", type=int, default=100, help="batch window (default 100)")
    parser.add_argument("--measure-s", type=float, default=MEASURE_S)
    parser.add_argument("--child-mqtt", nargs=2, type=int, metavar=("PORT", "BANDS"))
    parser.add_argument("--child-old", nargs=2, type=int, metavar=("PORT", "BANDS"))
    args = parser.parse_args()
    if args.child_mqtt:
        asyncio.run(publish_only(args.child_mqtt[0], args.child_mqtt[1], args.window_ms))
        return
    if args.child_old:
        asyncio.run(publish_old(args.child_old[0], args.child_old[1]))
        return
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_sub") is None:
        raise SystemExit("mosquitto is not installed (make bench installs it)")
    modes = args.modes.split(",") if args.modes else ["full", "mqtt"]
    if args.old_path and "old" not in modes:
        modes.append("old")
    results = []
    for bands in args.bands or [100, 1000]:
        for mode in modes:
            result = run(bands, mode, args.window_ms, args.measure_s)
            results.append(result)
            if args.json:
                print(json.dumps(result), flush=True)
    if not args.json:
        print(table(results))
    else:
        print(table(results), file=sys.stderr)


if __name__ == "__main__":
    main()

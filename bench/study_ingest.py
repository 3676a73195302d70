"""Study ingest: simulated gateways -> real Mosquitto -> the real ingester -> real PostgreSQL.

Prints figures only (no pass/fail). Two parts:

1. Sustained: G gateway processes, each journalling B bands of 2-channel samples in the
   recorder's 2-second chunks (16 rows a record), S times faster than real time, through
   the Journal (so every record is a real outbox row written in the journal's transaction)
   and the RecordSender; the ingester runs here, on the same machine. Over `--seconds`:
   samples/s committed centrally, p50/p99 lag from the gateway's commit to the central
   commit, samples lost (journalled but not stored) and duplicated (stored twice: the
   primary key makes that impossible, so this counts re-deliveries dropped).
2. Drain: one gateway whose outbox holds 4 bands x `--offline-hours` of data (written
   with no broker), then connected: the time until its outbox is empty.
3. Capacity: G gateways whose outboxes hold `--capacity-samples` between them (filled
   first, in parallel, with no broker), all connected at once, each sending from its own
   process: samples/s committed centrally until every outbox is empty. This is the path's
   own ceiling, apart from the cost of producing the data live (part 1).

PostgreSQL runs with its defaults (fsync on). Goals (issue 19): >= 50,000 samples/s for
60 s, p99 lag <= 2 s, 0 lost, 0 duplicated, a 4-hour, 4-band outbox drained in <= 60 s.

    python bench/study_ingest.py                 # 60 s, 2 gateways x 100 bands x 32
    python bench/study_ingest.py --seconds 10    # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acudevice.bridge.mqtt import BrokerAddress, MqttClient  # noqa: E402
from acudevice.bridge.records import RecordSender, send_records  # noqa: E402
from acudevice.bridge.topics import Topics  # noqa: E402
from acudevice.device.backoff import Backoff  # noqa: E402
from acudevice.store import Journal  # noqa: E402
from acudevice.study.ingest import Ingester  # noqa: E402
from acudevice.study.registry import add_gateways  # noqa: E402
from acudevice.study.schema import connect, migrate  # noqa: E402

CHUNK_ROWS_MS = 2_000
SESSION_ROWS = 19_000  # under the journal's 20,000 samples a session


def begin(journal: Journal, gateway: str, band: int) -> int:
    return journal.begin_session(
        program="nausea-relief", devices=["sim://"], device_model="wristband-p1",
        actuator="pressure", cap_level=20_000, limits={}, confirmations=[], schedule={},
        repeats_planned=4, participant=f"{gateway}-P{band}", gateway=gateway, band=f"b{band}",
    )  # fmt: skip


def chunk(t0: int) -> list[tuple[int, int, int, int, int]]:
    return [
        (ch, t, 10_000 + t % 997, 10_000, 2)
        for t in range(t0, t0 + CHUNK_ROWS_MS, 250)
        for ch in (0, 1)
    ]


async def drain_worker(broker: str, gateway: str, path: Path) -> None:
    """Send a filled journal's outbox until it is empty; print the seconds it took."""
    with Journal(path) as journal:
        sender = RecordSender(journal, Topics("acudevice", gateway), window=8)
        client = MqttClient(BrokerAddress.parse(broker), client_id=gateway)
        start = time.monotonic()
        task = asyncio.create_task(send_records(sender, client, backoff=Backoff(0.05, 0.5)))
        while not sender.idle():  # noqa: ASYNC110 - the outbox is a table, with no event
            await asyncio.sleep(0.02)
        took = time.monotonic() - start
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print(json.dumps({"gateway": gateway, "seconds": took}), flush=True)


async def gateway_worker(
    broker: str, gateway: str, bands: int, speed: float, seconds: float, directory: Path
) -> None:
    """One simulated gateway: journal live, send, then wait for its outbox to empty."""
    journal = Journal(directory / f"{gateway}.db")
    sender = RecordSender(journal, Topics("acudevice", gateway), window=8)
    client = MqttClient(BrokerAddress.parse(broker), client_id=gateway)
    task = asyncio.create_task(send_records(sender, client, backoff=Backoff(0.05, 0.5)))
    sessions = {b: begin(journal, gateway, b) for b in range(bands)}
    rows = dict.fromkeys(range(bands), 0)
    written = 0
    period = CHUNK_ROWS_MS / 1000 / speed  # wall seconds between one band's chunks
    start = time.monotonic()
    due = {b: start + period * b / bands for b in range(bands)}
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        for b in range(bands):
            if due[b] <= now:
                if rows[b] >= SESSION_ROWS:
                    journal.end_session(sessions[b], outcome="completed")
                    sessions[b], rows[b] = begin(journal, gateway, b), 0
                journal.add_sample_rows(sessions[b], chunk(rows[b] // 2 * 250))
                rows[b] += 16
                written += 16
                due[b] += period
        sender.wake()
        await asyncio.sleep(max(0.0, min(due.values()) - time.monotonic()))
    for b in range(bands):
        journal.end_session(sessions[b], outcome="completed")
    sender.wake()
    while not sender.idle():  # noqa: ASYNC110 - the outbox is a table, with no event
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(json.dumps({"gateway": gateway, "written": written}), flush=True)


def fill_offline(path: Path, gateway: str, bands: int, hours: float) -> int:
    """A journal whose outbox holds `hours` of `bands` bands, written with no broker."""
    written = 0
    with Journal(path) as journal:
        for b in range(bands):
            t_ms, left = 0, int(hours * 3600 * 1000)
            while left > 0:
                sid, rows = begin(journal, gateway, b), 0
                while rows < SESSION_ROWS and left > 0:
                    journal.add_sample_rows(sid, chunk(t_ms))
                    t_ms, left, rows = t_ms + CHUNK_ROWS_MS, left - CHUNK_ROWS_MS, rows + 16
                    written += 16
                journal.end_session(sid, outcome="completed")
    return written


def cpu_busy(seconds: float) -> float:
    """Share of the machine's CPUs busy over `seconds` (other engineers' work included)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


async def main(args: argparse.Namespace) -> None:
    from tests.mqtt_broker import Broker
    from tests.postgres_server import PostgresServer

    print(f"machine before the run: {cpu_busy(2.0):.0%} of {os.cpu_count()} CPUs busy")
    work = Path(tempfile.mkdtemp(prefix="study-bench-"))
    broker = Broker(work / "broker")
    broker.start()
    server = PostgresServer(durable=True)
    server.start()
    try:
        url = server.new_database()
        conn = await connect(url)
        await migrate(conn)
        names = [f"gw{i}" for i in range(args.gateways)] + ["drain"]
        await add_gateways(conn, names)
        await conn.close()
        ingester = Ingester(url)
        ingest = asyncio.create_task(
            ingester.run(MqttClient(BrokerAddress.parse(broker.url), client_id="ingest"))
        )
        await asyncio.wait_for(ingester.subscribed.wait(), 20)

        # 1. sustained
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--worker",
                name,
                "--broker",
                broker.url,
                "--bands",
                str(args.bands),
                "--speed",
                str(args.speed),
                "--seconds",
                str(args.seconds),
                "--dir",
                str(work),
                stdout=asyncio.subprocess.PIPE,
            )
            for name in names[:-1]
        ]
        t0, before = time.monotonic(), ingester.stats.samples_inserted
        load0 = os.times()
        await asyncio.sleep(args.seconds)
        window = time.monotonic() - t0
        in_window = ingester.stats.samples_inserted - before
        lags = sorted(ingester.stats.lags_s)
        outputs = [
            json.loads((await w.communicate())[0].decode().splitlines()[-1]) for w in workers
        ]
        load1 = os.times()
        written = sum(o["written"] for o in outputs)
        conn = await connect(url)
        stored = await conn.fetchval("SELECT count(*) FROM samples")
        await conn.close()
        rate = in_window / window
        offered = args.gateways * args.bands * 8 * args.speed
        p50 = lags[len(lags) // 2] if lags else float("nan")
        p99 = lags[int(len(lags) * 0.99)] if lags else float("nan")
        print(
            f"sustained: {args.gateways} gateways x {args.bands} bands x {args.speed:g} "
            f"(offered {offered:,.0f} samples/s) for {window:.0f} s"
        )
        print(
            f"  committed centrally  {rate:>10,.0f} samples/s   ({rate / 50_000:.2f} x the 50,000 goal)"
        )
        print(
            f"  lag p50 / p99        {p50:>10.3f} / {p99:.3f} s   (p99 {p99 / 2:.2f} x the 2 s goal)"
        )
        print(f"  journalled / stored  {written:>10,} / {stored:,}")
        print(f"  lost                 {max(0, written - stored):>10,}")
        print(
            f"  duplicated           {max(0, stored - written):>10,}   (re-deliveries dropped: {ingester.stats.samples_duplicate:,})"
        )
        print(
            f"  ingester process CPU {(load1.user + load1.system - load0.user - load0.system) / window:>10.0%}"
            " of one core (broker, PostgreSQL and gateways not included)"
        )

        # 2. drain after hours offline
        path = work / "drain.db"
        t = time.monotonic()
        queued = fill_offline(path, "drain", 4, args.offline_hours)
        print(f"drain: 4 bands x {args.offline_hours:g} h offline = {queued:,} samples queued "
              f"(written in {time.monotonic() - t:.0f} s)")  # fmt: skip
        base = ingester.stats.samples_inserted
        with Journal(path) as journal:
            sender = RecordSender(journal, Topics("acudevice", "drain"), window=8)
            t = time.monotonic()
            task = asyncio.create_task(
                send_records(sender, MqttClient(BrokerAddress.parse(broker.url), client_id="drain"))
            )
            while not sender.idle():  # noqa: ASYNC110 - the outbox is a table, with no event
                await asyncio.sleep(0.05)
            took = time.monotonic() - t
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        drained = ingester.stats.samples_inserted - base
        print(f"  drained {drained:,} samples in {took:.1f} s ({drained / took:,.0f} samples/s; "
              f"{took / 60:.2f} x the 60 s goal)")  # fmt: skip

        # 3. capacity
        hours = args.capacity_samples / args.gateways / 4 / 8 / 3600
        fills = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--fill",
                str(work / f"cap{i}.db"),
                "--worker",
                f"gw{i}",
                "--offline-hours",
                str(hours),
            )
            for i in range(args.gateways)
        ]
        for f in fills:
            await f.wait()
        conn = await connect(url)
        before_rows = await conn.fetchval("SELECT count(*) FROM samples")
        await conn.close()
        base, t = ingester.stats.samples_inserted, time.monotonic()
        drains = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--drain",
                str(work / f"cap{i}.db"),
                "--worker",
                f"gw{i}",
                "--broker",
                broker.url,
                stdout=asyncio.subprocess.PIPE,
            )
            for i in range(args.gateways)
        ]
        for d in drains:
            await d.communicate()
        took = time.monotonic() - t
        done = ingester.stats.samples_inserted - base
        conn = await connect(url)
        after_rows = await conn.fetchval("SELECT count(*) FROM samples")
        await conn.close()
        print(
            f"capacity: {args.gateways} gateways' outboxes, {done:,} samples, drained together in "
            f"{took:.1f} s = {done / took:,.0f} samples/s ({done / took / 50_000:.2f} x the 50,000 goal); "
            f"stored {after_rows - before_rows:,}"
        )
        ingest.cancel()
        await asyncio.gather(ingest, return_exceptions=True)
    finally:
        broker.stop()
        server.remove()
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine after the run: {cpu_busy(2.0):.0%} busy")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--bands", type=int, default=100)
    parser.add_argument("--speed", type=float, default=32.0)
    parser.add_argument("--offline-hours", type=float, default=4.0)
    parser.add_argument("--capacity-samples", type=int, default=4_000_000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fill", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--drain", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.fill:
        fill_offline(options.fill, options.worker, 4, options.offline_hours)
    elif options.drain:
        asyncio.run(drain_worker(options.broker, options.worker, options.drain))
    elif options.worker:
        asyncio.run(
            gateway_worker(
                options.broker,
                options.worker,
                options.bands,
                options.speed,
                options.seconds,
                options.dir,
            )
        )
    else:
        asyncio.run(main(options))

"""Host overhead at real device rates: host CPU per band-hour, against an idle event loop.

The simulator runs in its own process (`acudevice-sim serve --pty --speed 1`), so this
process's CPU time is the host alone: serial link, codec, heartbeats, the session
monitor, the journal. A nausea-relief session runs in real time (10 telemetry samples a
second, a heartbeat a second) and the host's CPU is measured over a window of it, then
scaled to an hour. Baseline, in the same run and process: an idle asyncio loop over the
same window. Prints figures only.

    .venv/bin/python bench/host_overhead.py [window seconds]
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acudevice.plan.library import ProgramLibrary
from acudevice.session.runner import Session
from acudevice.store import Journal


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--pty", "--speed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    return proc, "serial://" + proc.stdout.readline().rsplit(" on ", 1)[-1].strip()


async def cpu_over(window_s: float) -> float:
    cpu0 = time.process_time()
    await asyncio.sleep(window_s)
    return time.process_time() - cpu0


async def main(window_s: float) -> None:
    proc, url = start_simulator()
    try:
        with tempfile.TemporaryDirectory() as home, Journal(Path(home) / "j.sqlite3") as journal:
            program = ProgramLibrary().get("nausea-relief")
            session = asyncio.create_task(Session(program, [url], journal=journal).run())
            await asyncio.sleep(2.0)  # connected, loaded, ramping
            busy = await cpu_over(window_s)
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session  # vents the band first
            samples = len(journal.samples(journal.sessions()[0].id))
    finally:
        proc.terminate()
        proc.wait(10)
    idle = await cpu_over(window_s)
    per_hour = busy / window_s * 3600
    idle_hour = idle / window_s * 3600
    print(f"one band at real rates over a pty, {window_s:g} s window ({samples} journal samples)")
    print(f"{'host':<36} {'CPU s/band-hour':>16} {'% of a core':>12}")
    print(f"{'session: link+codec+monitor+journal':<36} {per_hour:>16.1f} {busy / window_s:>12.2%}")
    print(f"{'baseline: idle asyncio loop':<36} {idle_hour:>16.2f} {idle / window_s:>12.2%}")
    print(
        f"the session costs {per_hour - idle_hour:.1f} CPU s per band-hour above idle "
        f"(one core: about {3600 / max(per_hour - idle_hour, 1e-9):,.0f} bands)"
    )


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 15.0))

"""Host overhead: CPU seconds the host spends per minute of session.

The simulator runs in its own process (`acudevice-sim serve --pty`), so this process's CPU
time is the host alone: link, codec, heartbeats, safety monitor, journal. The session runs
at 20x, so the figure is per minute of session time at 20x the message rate of real time
(telemetry is thinned to keep 20 ms of wall time between samples). Prints figures only.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acudevice.plan.library import ProgramLibrary
from acudevice.session.runner import Session
from acudevice.store import Journal

SPEED = 20


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--pty", "--speed", str(SPEED)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, "serial://" + proc.stdout.readline().rsplit(" on ", 1)[-1].strip()


async def main(proc: subprocess.Popen[str], url: str) -> None:
    try:
        with tempfile.TemporaryDirectory() as home, Journal(Path(home) / "j.sqlite3") as journal:
            program = ProgramLibrary().get("nausea-relief")
            cpu0, wall0 = time.process_time(), time.monotonic()
            result = await Session(program, [url], journal=journal).run()
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            samples = len(journal.samples(result.session_id or 0))
    finally:
        proc.terminate()
        proc.wait(10)
    minutes = 480 / 60
    print(
        f"session: {result.outcome}, {minutes:g} min of plan in {wall:.1f} s wall at {SPEED}x "
        f"over {url}; {samples} journal samples"
    )
    print(
        f"host CPU: {cpu:.2f} s = {cpu / minutes:.3f} CPU s per session minute "
        f"(at {SPEED}x message rate); {cpu / wall * 100:.1f} % of one core while running"
    )


if __name__ == "__main__":
    asyncio.run(main(*start_simulator()))

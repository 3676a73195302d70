"""`acudevice-sim serve` in a subprocess, as a firmware engineer or CI would run it."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def serve(*flags: str) -> Iterator[str]:
    """Start the simulator; yield the device URL it prints; stop it with SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        where = line.rsplit(" on ", 1)[-1].strip()
        if not where:
            raise RuntimeError(
                f"acudevice-sim printed {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
            )
        yield where  # a device URL: serial:///dev/pts/N or tcp://127.0.0.1:PORT
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

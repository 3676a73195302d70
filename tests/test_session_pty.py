"""Sessions over a real pseudo-terminal, the simulator in another process: what a USB band does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acudevice.device import connect
from acudevice.protocol import FaultCode, FirmwareState
from acudevice.protocol.messages import FaultRaised
from acudevice.safety.compiler import compile_program
from acudevice.safety.limits import effective_limits
from acudevice.safety.rules import WATCHDOG_TIMEOUT_S
from acudevice.session.runner import Session
from acudevice.store import Journal
from tests.session_helpers import NAUSEA
from tests.sim_server import serve

pytestmark = pytest.mark.wire


async def test_nausea_relief_completes_over_a_pty(tmp_path: Path) -> None:
    with serve("--pty", "--speed", "50") as url, Journal(tmp_path / "j.sqlite3") as journal:
        result = await Session(NAUSEA, [url], journal=journal).run()
    assert result.outcome == "completed" and result.repeats_done == 4
    assert 11_000 < result.peak_level < 13_000


async def test_a_frozen_host_is_vented_by_the_band_within_three_seconds() -> None:
    """The one real-time watchdog check: a real process, a real pty, real seconds.

    Every other watchdog test runs on a virtual clock (looptime); this one proves the band's
    own wall clock, over the wire, without any host help.
    """
    with serve("--pty", "--speed", "1") as url:
        async with connect(url) as band:
            schedule = compile_program(
                NAUSEA, effective_limits(band.info.device_model), band.info.device_model
            )
            events = band.stream()
            await band.set_limits(schedule.cap_level)
            await band.load(schedule)
            await band.start()
            # 1.5 s past the watchdog: a simulator starved on a busy machine still gets a turn
            # before the host wakes and heartbeats again.
            frozen_for = WATCHDOG_TIMEOUT_S + 1.5
            time.sleep(frozen_for)  # the whole host stops: no heartbeats, no reads  # noqa: ASYNC251
            async with asyncio.timeout(5):  # the fault was sent while we were frozen
                async for item in events:
                    if isinstance(item, FaultRaised):
                        assert item.fault == FaultCode.WATCHDOG
                        break
            status = await band.status()
            assert status.state == FirmwareState.FAULT and status.fault == FaultCode.WATCHDOG
            await band.stop()


def test_ctrl_c_mid_hold_vents_and_records_stopped(isolated_home: Path) -> None:
    with serve("--pty", "--speed", "20") as url:
        env = {**os.environ, "ACUDEVICE_HOME": str(isolated_home)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "acudevice.cli", "run", "nausea-relief", "--device", url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A background job of a non-interactive shell inherits SIGINT ignored; the child
            # must see Ctrl-C however pytest was launched.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if " hold " in line:
                break
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err
        assert "vent" in err

        async def vented() -> int:
            """Wait, with a deadline, for the vent (10 s of device time, 0.5 s at 20x)."""
            async with connect(url) as band, asyncio.timeout(10):
                while True:
                    status = await band.status()
                    assert status.state in (FirmwareState.IDLE, FirmwareState.VENTING), status
                    if status.measured_level < 2_000:
                        return status.measured_level
                    await asyncio.sleep(0.05)

        assert asyncio.run(vented()) < 2_000
    with Journal(isolated_home / "data" / "journal.sqlite3") as journal:
        [record] = journal.sessions()
        assert record.outcome == "stopped"

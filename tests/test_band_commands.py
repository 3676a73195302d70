"""`acudevice status`, `acudevice stop`, and a conformance run that leaves the band at rest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from acudevice.cli.main import app
from acudevice.conformance import CHECKS
from acudevice.device import connect
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.plan.schedule import Schedule
from acudevice.protocol import FaultCode
from acudevice.protocol.messages import FaultRaised
from acudevice.safety.compiler import compile_program
from acudevice.safety.limits import effective_limits
from tests.plan_helpers import program
from tests.sim_server import serve

pytestmark = pytest.mark.wire

runner = CliRunner()


def short_schedule(model: PressureDevice | VibrationDevice, hold_s: float) -> Schedule:
    plan = program(
        repeats=1,
        phases=[
            {"kind": "ramp", "duration_s": 10, "target_kpa": 8},
            {"kind": "hold", "duration_s": hold_s},
            {"kind": "release", "duration_s": 10},
        ],
    )
    return compile_program(plan, effective_limits(model), model)


def status_of(url: str) -> dict[str, object]:
    result = runner.invoke(app, ["status", url, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_conformance_twice_passes_twice_and_leaves_the_band_at_rest(tmp_path: Path) -> None:
    with serve("--pty", "--speed", "20") as url:
        first = runner.invoke(app, ["conformance", url])
        assert first.exit_code == 0, first.output
        for name, _ in CHECKS:  # each result printed once, with its detail
            assert first.stdout.count(f"{name}:") == 1, (name, first.stdout)
        report = tmp_path / "conformance.xml"
        second = runner.invoke(app, ["conformance", url, "--json", "--junit", str(report)])
        assert second.exit_code == 0, second.output
        data = json.loads(second.stdout)
        assert [r["name"] for r in data["results"]] == [name for name, _ in CHECKS]
        assert data["failed"] == 0 and data["passed"] == len(CHECKS)
        now = status_of(url)
    assert now["state"] == "IDLE" and now["fault"] == "NONE"
    suite = ET.parse(report).getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == [name for name, _ in CHECKS]


def test_stop_clears_a_latched_fault_and_status_shows_it() -> None:
    with serve("--pty", "--speed", "20", "--fault", "brownout:2000") as url:

        async def latch() -> None:
            async with connect(url) as band:
                schedule = short_schedule(band.info.device_model, hold_s=5)
                stream = band.stream()
                await band.set_limits(schedule.cap_level)
                await band.load(schedule)
                await band.start()
                async with asyncio.timeout(10):  # the band reboots and latches BROWNOUT
                    async for item in stream:
                        if isinstance(item, FaultRaised) and item.fault is FaultCode.BROWNOUT:
                            break

        asyncio.run(latch())
        before = status_of(url)
        assert (before["state"], before["fault"]) == ("FAULT", "BROWNOUT")
        stopped = runner.invoke(app, ["stop", url])
        assert stopped.exit_code == 0, stopped.output
        assert "IDLE" in stopped.stdout and "was FAULT BROWNOUT" in stopped.stdout
        after = status_of(url)
    assert (after["state"], after["fault"]) == ("IDLE", "NONE")


def test_stop_vents_a_running_band_at_once() -> None:
    with serve("--pty", "--speed", "20") as url:

        async def leave_running() -> None:
            band = connect(url, heartbeat_interval_s=None)
            await band.open()
            schedule = short_schedule(band.info.device_model, hold_s=60)
            await band.set_limits(schedule.cap_level)
            await band.load(schedule)
            await band.start()
            await band.link.close()  # the host vanishes, the band keeps running

        asyncio.run(leave_running())
        stopped = runner.invoke(app, ["stop", url, "--json"])
        assert stopped.exit_code == 0, stopped.output
        data = json.loads(stopped.stdout)
    assert data["before"]["state"] == "RUNNING"
    assert data["after"]["state"] == "IDLE" and data["after"]["measured_kpa"] < 2


def test_status_and_stop_name_a_bad_device_in_one_line() -> None:
    result = runner.invoke(app, ["status", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_status_of_a_fresh_simulated_band() -> None:
    now = status_of("sim://")
    assert now == {
        "state": "IDLE",
        "measured_kpa": now["measured_kpa"],
        "cap_kpa": 40.0,
        "battery_percent": 100,
        "fault": FaultCode.NONE.name,
    }

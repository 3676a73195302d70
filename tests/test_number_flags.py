"""Numbers are numbers: every float flag and setting refuses nan, inf and values outside its
documented range, in one line that names the flag or field, the value and the range, exit 2.

A `--remote-max nan` once ran a 6,000 s remote program, and `--broker-grace nan` made the
outage stop random: comparisons with nan are always false, so nan slipped past every check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from acudevice.bridge import ranges
from acudevice.cli.main import app
from acudevice.numbers import Span
from acudevice.transport import TransportError, open_transport
from simulator.cli import main as sim_main

pytestmark = pytest.mark.unit

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
BAD = ["nan", "inf", "-inf", "1e12", "0", "-1"]
BRIDGE = ["bridge", "--broker", "mqtt://127.0.0.1:1", "--device", "sim://"]


def assert_one_line_refusal(exit_code: int, stderr: str, name: str, value: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert exit_code == 2, stderr
    assert len(lines) == 1, stderr
    [line] = lines
    assert name in line and "must be" in line, line
    shown = {"1e12": "1000000000000", "-inf": "-inf"}.get(value, value)
    assert f"got {shown}" in line, line
    assert "Traceback" not in stderr and "Input should" not in stderr


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    "argv",
    [
        ["run", "nausea-relief", "--device", "sim://?speed=max"],
        ["check", "nausea-relief"],
        ["programs", "plot", "nausea-relief", "-o", "x.png"],
    ],
    ids=["run", "check", "programs-plot"],
)
def test_cap_kpa_refuses_what_is_not_a_cap(argv: list[str], value: str) -> None:
    result = runner.invoke(app, [*argv, "--cap-kpa", value])
    if value in ("0", "-1", "1e12"):
        assert "kPa" in result.stderr  # the unit, beside the value and the range
    assert_one_line_refusal(result.exit_code, result.stderr, "--cap-kpa", value)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "121"])
def test_scan_timeout_refuses_nan_inf_and_out_of_range(value: str) -> None:
    result = runner.invoke(app, ["scan", "--timeout", value])
    assert_one_line_refusal(result.exit_code, result.stderr, "--timeout", value)


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("flag", ["--telemetry-hz", "--broker-grace", "--remote-max"])
def test_bridge_float_flags_refuse_nan_inf_and_out_of_range(flag: str, value: str) -> None:
    result = runner.invoke(app, [*BRIDGE, flag, value])
    assert_one_line_refusal(result.exit_code, result.stderr, flag, value)


@pytest.mark.parametrize(("flag", "value"), [("--sim-speed", "0"), ("--sim-fleet", "6000")])
def test_bridge_whole_number_flags_refuse_out_of_range(flag: str, value: str) -> None:
    result = runner.invoke(app, [*BRIDGE, flag, value])
    assert_one_line_refusal(result.exit_code, result.stderr, flag, value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0.0", "1e12"])
@pytest.mark.parametrize(
    "field",
    ["telemetry_hz", "broker_grace_s", "remote_max_s", "backoff_initial_s", "backoff_max_s"],
)
def test_bridge_toml_numbers_refuse_nan_inf_and_out_of_range(
    field: str, value: str, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f"{field} = {value}\n")
    result = runner.invoke(app, [*BRIDGE, "--config", str(config)])
    shown = {"0.0": "0", "1e12": "1000000000000"}.get(value, value)
    assert_one_line_refusal(result.exit_code, result.stderr, f"bridge.toml:{field}", shown)


def test_bridge_toml_backoff_must_grow(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("backoff_initial_s = 30\nbackoff_max_s = 5\n")
    result = runner.invoke(app, [*BRIDGE, "--config", str(config)])
    assert result.exit_code == 2
    assert "backoff_max_s (5 s) must not be less than backoff_initial_s (30 s)" in result.stderr


def test_every_bridge_range_is_documented() -> None:
    doc = (ROOT / "docs" / "mqtt.md").read_text()
    for name in dir(ranges):
        span = getattr(ranges, name)
        if isinstance(span, Span):
            assert str(span) in doc, (name, str(span))


@pytest.mark.parametrize(
    ("argv", "flag", "value"),
    [
        (["serve", "--pty", "--speed", "0"], "--speed", "0"),
        (["serve", "--pty", "--speed", "nan"], "--speed", "nan"),
        (["serve", "--pty", "--speed", "inf"], "--speed", "inf"),
        (["serve", "--pty", "--speed", "2.5"], "--speed", "2.5"),
        (["serve", "--pty", "--speed", "1e20"], "--speed", "1e+20"),
        (["serve", "--pty", "--battery", "nan"], "--battery", "nan"),
        (["serve", "--pty", "--battery", "inf"], "--battery", "inf"),
        (["serve", "--pty", "--battery", "101"], "--battery", "101%"),
        (["serve", "--pty", "--battery", "-1"], "--battery", "-1%"),
        (["serve", "--pty", "--uptime", "nan"], "--uptime", "nan"),
        (["serve", "--pty", "--uptime=-inf"], "--uptime", "-inf"),  # "-inf" alone reads as a flag
        (["serve", "--pty", "--uptime", "1e300"], "--uptime", "1e+300 s"),
    ],
)
def test_simulator_flags_refuse_in_one_line_without_argparse_internals(
    argv: list[str], flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        sim_main(argv)
    stderr = capsys.readouterr().err
    assert_one_line_refusal(int(exited.value.code or 0), stderr, flag, value)
    assert "usage:" not in stderr and "parse_" not in stderr and "invalid" not in stderr


@pytest.mark.parametrize(
    "query", ["battery=nan", "battery=inf", "battery=101", "uptime_s=nan", "speed=nan"]
)
def test_sim_url_options_refuse_nan_inf_and_out_of_range(query: str) -> None:
    with pytest.raises(TransportError, match="must be"):
        open_transport(f"sim://?{query}")

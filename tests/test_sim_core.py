"""The compiled device model (simulator/compiled.py) is the Python model run as C: the same
samples, events and true levels for the same seed, and never a build of other sources."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.protocol import ActuatorCode, Start
from simulator import compiled
from simulator.client import DirectClient, ramp_hold_release
from simulator.device import SimDevice
from simulator.faults import FaultPlan
from simulator.sensor import round_half_even

pytestmark = pytest.mark.sim

TIMES = {"ramp_ms": 20_000, "hold_ms": 30_000, "release_ms": 20_000, "repeats": 2}
SCHEDULES = {
    "wristband-p1": ramp_hold_release(peak_level=12_000, cap_level=14_000, **TIMES),
    "vibepad-v1": ramp_hold_release(
        peak_level=600, cap_level=700, actuator=ActuatorCode.VIBRATION, **TIMES
    ),
}
SCENARIOS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("wristband-p1", 1, ()),
    ("wristband-p1", 2, ("drift:-2",)),
    ("wristband-p1", 3, ("drift:3",)),
    ("wristband-p1", 4, ("offset:-1.5",)),
    ("wristband-p1", 5, ("stuck-pump:30000",)),
    ("wristband-p1", 6, ("stuck-valve:45000",)),
    ("wristband-p1", 7, ("brownout:25000",)),
    ("vibepad-v1", 8, ()),
    ("vibepad-v1", 9, ("stuck-pump:20000",)),
)


def traces() -> dict[str, str]:
    """A digest per scenario of everything the device said and how high it really went."""
    out = {}
    for model, seed, faults in SCENARIOS:
        client = DirectClient(SimDevice(model, seed=seed, faults=FaultPlan.parse(faults)))
        schedule = SCHEDULES[model]
        client.prepare(schedule)
        client.call(Start())
        client.advance(schedule.total_ms / 1000 + 20)
        device = client.device
        seen = [*map(repr, client.events), *map(repr, client.telemetry)]
        seen += [repr(device.true_peak), repr(device.true_level), str(device.now_ms)]
        digest = hashlib.sha256("\n".join(seen).encode()).hexdigest()
        out[f"{model} seed {seed} {' '.join(faults) or 'no fault'}"] = digest
    return out


def _pure_traces() -> dict[str, str]:
    code = "import json, test_sim_core; print(json.dumps(test_sim_core.traces()))"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, compiled.PURE_ENV: "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "tests"), str(root)])
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


requires_core = pytest.mark.skipif(
    not compiled.in_use(), reason="compiled core not built for these sources (make core)"
)


@requires_core
def test_the_compiled_model_says_exactly_what_the_python_model_says() -> None:
    assert traces() == _pure_traces()


@requires_core
def test_the_whole_model_is_compiled() -> None:
    import importlib

    for name in compiled.MODULES:
        module = importlib.import_module(f"simulator.{name}")
        assert not (module.__file__ or "").endswith(".py"), name


def test_a_build_is_named_by_its_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited module changes the digest, so the old build is not loaded for it."""
    before = compiled.digest()
    package = tmp_path / "simulator"
    package.mkdir()
    for name in compiled.MODULES:
        source = Path(compiled.__file__).with_name(f"{name}.py").read_text()
        package.joinpath(f"{name}.py").write_text(source)
    monkeypatch.setattr(compiled, "_PACKAGE", package)
    assert compiled.digest() == before
    edited = package.joinpath("firmware.py")
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert compiled.digest() != before


def test_pure_python_is_one_environment_variable_away() -> None:
    env = {**os.environ, compiled.PURE_ENV: "1"}
    code = "import simulator.compiled as c; print(c.in_use())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


@settings(max_examples=2000)
@given(
    st.one_of(
        st.floats(-1e9, 1e9, allow_nan=False),
        st.integers(-(10**6), 10**6).map(lambda n: n / 2),  # every tie
    )
)
def test_the_models_rounding_is_pythons(x: float) -> None:
    assert round_half_even(x) == round(x)

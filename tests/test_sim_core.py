"""The compiled core (simulator/compiled.py) is the Python model run as C: the same samples,
events and true levels for the same seed, and never a build of other sources."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.protocol import ActuatorCode, Start
from simulator import compiled
from simulator.client import DirectClient, ramp_hold_release
from simulator.core.device import SimDevice
from simulator.core.faults import FaultPlan
from simulator.core.sensor import round_half_even

pytestmark = [pytest.mark.sim, pytest.mark.model]

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
    not compiled.in_use(),
    reason="the compiled core is not in use (ACUDEVICE_SIM_PURE, or no build: make core)",
)


@requires_core
def test_the_compiled_model_says_exactly_what_the_python_model_says() -> None:
    assert traces() == _pure_traces()


@requires_core
def test_the_whole_core_is_compiled() -> None:
    assert {"device", "firmware", "models", "requests"} <= set(compiled.modules())
    assert compiled.running_as_source() == []


def test_the_suite_runs_in_the_mode_it_asked_for(request: pytest.FixtureRequest) -> None:
    """`make test` runs the model's tests twice, asking for each mode: a core that failed
    to load must fail the compiled run, not pass it a second time as Python."""
    mode = request.config.getoption("--sim-mode")
    source = compiled.running_as_source()
    if mode == "compiled":
        assert compiled.in_use() and source == []
    elif mode == "pure":
        assert not compiled.in_use() and len(source) == len(compiled.modules())
    else:
        assert compiled.in_use() == (source == [])
        assert compiled.in_use() == (
            not os.environ.get(compiled.PURE_ENV) and compiled.current_build() is not None
        )


def test_a_build_covers_the_core_and_every_module_it_imports() -> None:
    files = compiled.sources()
    assert {f"simulator/core/{name}.py" for name in compiled.modules()} <= set(files)
    # the protocol's modules, reached through `acudevice.protocol`, and the packages' inits
    assert {"acudevice/protocol/codes.py", "acudevice/protocol/messages.py"} <= set(files)
    assert {"acudevice/__init__.py", "simulator/__init__.py"} <= set(files)
    # not the host above the protocol, which the public face in acudevice/__init__ names
    assert not [f for f in files if f.startswith(("acudevice/session", "acudevice/device"))]


def _tree(tmp_path: Path) -> Path:
    """A copy of the sources, to edit."""
    root = tmp_path / "tree"
    for package in ("acudevice", "simulator"):
        shutil.copytree(
            compiled.ROOT / package,
            root / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return root


def test_the_digest_changes_with_any_source_the_mypy_release_or_a_new_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = compiled.sources()
    before = compiled.digest(files, "2.4.1")
    root = _tree(tmp_path)
    monkeypatch.setattr(compiled, "ROOT", root)
    monkeypatch.setattr(compiled, "CORE", root / "simulator" / "core")
    assert compiled.sources() == files and compiled.digest(files, "2.4.1") == before
    assert compiled.digest(files, "2.4.2") != before
    for name in (
        "simulator/core/firmware.py",
        "acudevice/protocol/codes.py",
        "acudevice/__init__.py",
    ):
        source = root / name
        text = source.read_text()
        source.write_text(text + "\n# edited\n")
        assert compiled.digest(files, "2.4.1") != before, name
        source.write_text(text)
    # a helper that starts importing another module brings it in, and what it imports
    codes = root / "acudevice" / "protocol" / "codes.py"
    codes.write_text(codes.read_text() + "\nfrom acudevice.plan import schedule\n")
    grown = set(compiled.sources()) - set(files)
    assert {"acudevice/plan/__init__.py", "acudevice/plan/schedule.py"} <= grown


def test_only_a_finished_build_of_exactly_these_sources_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`current_build` without compiling: a build is a directory named by the digest of the
    files its `sources.txt` lists, for this interpreter, covering the whole core folder."""
    root = _tree(tmp_path)
    monkeypatch.setattr(compiled, "ROOT", root)
    monkeypatch.setattr(compiled, "CORE", root / "simulator" / "core")
    monkeypatch.setattr(compiled, "CORE_ROOT", root / ".sim-core")
    files = compiled.sources()

    def fake_build(name: str, tag: str = sys.implementation.cache_tag) -> Path:
        where = root / ".sim-core" / name
        where.mkdir(parents=True)
        where.joinpath(compiled.MANIFEST).write_text("\n".join(["2.4.1", tag, *files]))
        return where

    assert compiled.current_build() is None, "no .sim-core at all"
    name = compiled.digest(files, "2.4.1")
    fake_build(".building-x")  # a build under way (or killed): never loaded
    fake_build("0" * 16)  # its files hash to another name: made from other sources
    fake_build(name, tag="cpython-399")  # another interpreter's
    assert compiled.current_build() is None
    shutil.rmtree(root / ".sim-core" / name)
    good = fake_build(name)
    assert compiled.current_build() == good
    extra = root / "simulator" / "core" / "added.py"
    extra.write_text("X = 1\n")  # a core module the build lacks
    assert compiled.current_build() is None
    extra.unlink()
    assert compiled.current_build() == good
    helper = root / "acudevice" / "files.py"
    helper.write_text(helper.read_text() + "\n")
    assert compiled.current_build() is None, "a helper it was made from changed"


_SHOW = (
    "import simulator.compiled as c; from simulator.core.device import SimDevice; "
    "print(c.in_use(), SimDevice().firmware.segment_index)"
)
_FORCE = (  # how the build was loaded before its digest covered imports: by its own files
    "import sys, simulator.core; sys.path.append({build!r}); "
    "simulator.core.__path__.insert(0, {build!r} + '/simulator/core'); "
)


def _run_in(root: Path, code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**clean, "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@requires_core
def test_a_stale_build_is_never_loaded_after_an_edit_to_a_module_the_core_imports(
    tmp_path: Path,
) -> None:
    """A `Final` in a helper outside the core (the protocol's NO_SEGMENT) is baked into the
    binary; after it changes, the core runs as Python and says the new value."""
    build = compiled.current_build()
    assert build is not None
    root = _tree(tmp_path)
    shutil.copytree(build, root / ".sim-core" / build.name)
    os.symlink(compiled.ROOT / "profiles", root / "profiles")
    assert _run_in(root, _SHOW) == "True 65535", "an untouched copy loads its build"

    codes = root / "acudevice" / "protocol" / "codes.py"
    codes.write_text(
        codes.read_text().replace("NO_SEGMENT: Final = 0xFFFF", "NO_SEGMENT: Final = 0xFFFE")
    )
    assert _run_in(root, _SHOW) == "False 65534", "the edit is seen: the model runs as Python"
    # what loading that build anyway would have done: the old value, baked in
    forced = _FORCE.format(build=str(root / ".sim-core" / build.name)) + _SHOW
    assert _run_in(root, forced, **{compiled.PURE_ENV: "1"}) == "True 65535"


def test_pure_python_is_one_environment_variable_away() -> None:
    env = {**os.environ, compiled.PURE_ENV: "1"}
    code = "import simulator.compiled as c; print(c.in_use(), len(c.running_as_source()))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", str(len(compiled.modules()))]


@settings(max_examples=2000)
@given(
    st.one_of(
        st.floats(-1e9, 1e9, allow_nan=False),
        st.integers(-(10**6), 10**6).map(lambda n: n / 2),  # every tie
    )
)
def test_the_models_rounding_is_pythons(x: float) -> None:
    assert round_half_even(x) == round(x)

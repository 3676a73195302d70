"""The device model compiled with mypyc: the same source, run as C.

`make install` builds it (`acudevice-sim build-core`) into `.sim-core/<digest>/` beside
the package, named by a digest of the sources it was compiled from. `simulator/__init__.py`
puts that directory in front of the package's path only when the sources on disk have that
digest, so an edited module runs as Python until the next build, never as a stale binary.
`ACUDEVICE_SIM_PURE=1` runs the pure-Python model; tests check the two give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

MODULES = (
    "battery",
    "control",
    "device",
    "firmware",
    "monitors",
    "plant",
    "player",
    "sensor",
    "telemetry",
)
"""The modules a simulated event runs through; the rest (clock, transports, CLI) is glue."""
PURE_ENV = "ACUDEVICE_SIM_PURE"
_PACKAGE = Path(__file__).resolve().parent
CORE_ROOT = _PACKAGE.parent / ".sim-core"
_SETUP = (
    "import sys\n"
    "from setuptools import setup\n"
    "from mypyc.build import mypycify\n"
    "paths, target = sys.argv.pop(1).split(','), sys.argv.pop(1)\n"
    "setup(name='acudevice-sim-core', packages=[], py_modules=[],\n"
    "      ext_modules=mypycify(paths, opt_level='3', target_dir=target))\n"
)


class CoreBuildError(RuntimeError):
    """mypyc or the C compiler failed; the message carries their output."""


def digest() -> str:
    """Of the compiled modules' sources and the interpreter that will load them."""
    h = hashlib.sha256(sys.implementation.cache_tag.encode())
    for name in MODULES:
        h.update(name.encode())
        h.update((_PACKAGE / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def build_dir() -> Path:
    return CORE_ROOT / digest()


def activate(package_path: list[str]) -> bool:
    """Called by `simulator/__init__`: use the build for these sources, if there is one."""
    if os.environ.get(PURE_ENV):
        return False
    where = build_dir()
    if not (where / "simulator").is_dir():
        return False
    sys.path.append(str(where))  # mypyc's shared library is a top-level module
    package_path.insert(0, str(where / "simulator"))
    return True


def in_use() -> bool:
    """Whether the device model this process loads is the compiled one."""
    from importlib.util import find_spec

    spec = find_spec(f"{__package__}.device")  # where it is found, without importing it
    return spec is not None and not (spec.origin or "").endswith(".py")


def build(*, force: bool = False) -> Path:
    """Compile the model for the sources on disk (nothing to do if that build exists).

    The build lands in a temporary directory, is imported once in a fresh interpreter,
    then renamed into place: a failed or interrupted build leaves nothing behind.
    """
    target = build_dir()
    if target.is_dir() and not force:
        return target
    import shutil
    import tempfile

    if shutil.which(os.environ.get("CC", "cc")) is None:
        raise CoreBuildError("no C compiler (cc) on PATH: install gcc (make installs it)")
    CORE_ROOT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CORE_ROOT, prefix=".building-") as tmp:
        staged, work = Path(tmp) / "core", Path(tmp) / "work"
        paths = ",".join(f"simulator/{name}.py" for name in MODULES)
        command = [sys.executable, "-c", _SETUP, paths, str(work / "c")]
        command += ["build_ext", "--build-lib", str(staged), "--build-temp", str(work / "o")]
        _run(command, "mypyc")
        # Loaded the way `activate` loads it, from where it was built.
        probe = (
            f"import sys; sys.path.append({str(staged)!r}); import simulator; "
            f"simulator.__path__.insert(0, {str(staged / 'simulator')!r}); "
            "import simulator.compiled as c; sys.exit(0 if c.in_use() else 3)"
        )
        env = {**os.environ, "PYTHONPATH": str(_PACKAGE.parent), PURE_ENV: "1"}
        _run([sys.executable, "-c", probe], "the import check", env=env)
        if target.exists():  # --force: the old build steps aside, never half-removed
            target.rename(Path(tmp) / "replaced")
        try:
            staged.rename(target)
        except OSError:
            if not target.is_dir():  # not another build of the same sources, finished first
                raise
    for old in CORE_ROOT.iterdir():
        gone = not old.name.startswith(".") and old.name != target.name  # older sources
        killed = old.name.startswith(".building-") and time.time() - old.stat().st_mtime > 3600
        if old.is_dir() and (gone or killed):  # killed: a build that never finished
            shutil.rmtree(old, ignore_errors=True)
    return target


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    import subprocess

    done = subprocess.run(
        command, cwd=_PACKAGE.parent, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise CoreBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")

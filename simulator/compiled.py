"""The simulator's core (`simulator/core/`) compiled with mypyc: the same source, run as C.

`make install` builds every module of the core (`acudevice-sim build-core`) into
`.sim-core/<digest>/` beside the package. The digest covers everything the binary was made
from: every file of the core folder, every module of this repository they import, directly
or not, with the packages holding them (mypyc copies another module's `Final` constants
into the binary, so an edit there makes a build stale too), the interpreter and the mypy
release that compiled it. The build lists those files in `sources.txt`; `import simulator`
loads a build only when the files it lists hash to its name today and the core folder has
no file it lacks, so an edited module runs as Python until the next build, never as a
stale binary. Checking costs reading and hashing those files, nothing imported or parsed.
`ACUDEVICE_SIM_PURE=1` runs the pure-Python model; tests check the two give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

PURE_ENV = "ACUDEVICE_SIM_PURE"
_PACKAGE = Path(__file__).resolve().parent
ROOT = _PACKAGE.parent
"""The directory holding `acudevice/` and `simulator/`; sources are named relative to it."""
CORE = _PACKAGE / "core"
CORE_ROOT = ROOT / ".sim-core"
MANIFEST = "sources.txt"
"""In a build: the mypy release, the interpreter's cache tag, then one source per line."""
_OURS = ("acudevice", "simulator")
_SETUP = (
    "import sys\n"
    "from setuptools import setup\n"
    "from mypyc.build import mypycify\n"
    "paths, target = sys.argv.pop(1).split(','), sys.argv.pop(1)\n"
    "setup(name='acudevice-sim-core', packages=[], py_modules=[],\n"
    "      ext_modules=mypycify(paths, opt_level='3', target_dir=target))\n"
)


class CoreBuildError(RuntimeError):
    """mypyc or the C compiler failed, or the sources moved under it; says which."""


def modules() -> list[str]:
    """The core's modules (every one is compiled), by name within `simulator.core`."""
    return sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")


def digest(files: Sequence[str], mypy: str) -> str:
    """Of these sources (paths relative to ROOT), the interpreter and the mypy release."""
    h = hashlib.sha256(f"{sys.implementation.cache_tag}\0{mypy}".encode())
    root = str(ROOT)
    for name in files:
        with open(os.path.join(root, name), "rb", buffering=0) as f:  # the cheapest read
            data = f.readall()
        h.update(f"\0{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def current_build() -> Path | None:
    """The build made from the sources on disk today, if there is one."""
    try:
        builds = os.listdir(CORE_ROOT)
        core = {f"simulator/core/{f}" for f in os.listdir(CORE) if f.endswith(".py")}
    except OSError:
        return None
    for name in builds:
        if name.startswith("."):  # a build under way, or one a kill left behind
            continue
        try:
            mypy, tag, *files = (CORE_ROOT / name / MANIFEST).read_text("utf-8").splitlines()
            mine = tag == sys.implementation.cache_tag and core <= set(files)
            if mine and digest(files, mypy) == name:
                return CORE_ROOT / name
        except (OSError, ValueError):  # no manifest, a source gone: not this build
            continue
    return None


def activate() -> bool:
    """Called by `simulator/__init__`: use the build for these sources, if there is one."""
    if os.environ.get(PURE_ENV):
        return False
    where = current_build()
    if where is None:
        return False
    import simulator.core

    sys.path.append(str(where))  # mypyc's shared library is a top-level module
    simulator.core.__path__.insert(0, str(where / "simulator" / "core"))
    return True


def in_use() -> bool:
    """Whether the device model this process loads is the compiled one."""
    from importlib.util import find_spec

    spec = find_spec("simulator.core.device")  # where it is found, without importing it
    return spec is not None and not (spec.origin or "").endswith(".py")


def running_as_source() -> list[str]:
    """The core's modules this process runs as Python (imports them all)."""
    import importlib

    loaded = (importlib.import_module(f"simulator.core.{name}") for name in modules())
    return [m.__name__ for m in loaded if (m.__file__ or "").endswith(".py")]


# ------------------------------------------------------------ what a build is made from


def sources() -> list[str]:
    """Every file a build of the core is made from, relative to ROOT, sorted.

    The core folder; every module of this repository it imports, and what those import,
    and so on (under `TYPE_CHECKING` or in a function too: mypy reads those); and the
    packages holding each, whose `__init__` runs first. A package's own imports are
    followed only when it is imported by name: `from acudevice.protocol import Ack` shows
    the core the names of `acudevice.protocol`, not those `acudevice/__init__.py` imports
    (the public face names the whole library), so only its bytes count.
    """
    import ast

    todo = [*CORE.glob("*.py")]
    followed: set[Path] = set()
    found: set[Path] = set(todo)
    while todo:
        path = todo.pop()
        if path in followed:
            continue
        followed.add(path)
        holders = _holders(path.relative_to(ROOT).parent.parts)
        found.update(holders)
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            for name in _imported_names(node, path):
                if name.split(".")[0] in _OURS:
                    module, packages = _files_of(name)
                    found.update(packages)
                    if module is not None:
                        found.add(module)
                        todo.append(module)
    return sorted(p.relative_to(ROOT).as_posix() for p in found)


def _imported_names(node: object, path: Path) -> list[str]:
    """The modules an import statement names (and, for `from`, maybe-modules)."""
    import ast

    if isinstance(node, ast.Import):  # `import a.b` binds `a`: a and a.b are both named
        parts = [alias.name.split(".") for alias in node.names]
        return [".".join(p[:n]) for p in parts for n in range(1, len(p) + 1)]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the package holding `path`
        package = path.relative_to(ROOT).parent.parts
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([base] if base else [])])
    # `from simulator.core import requests` names a module; `import X` names an attribute
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _files_of(module: str) -> tuple[Path | None, list[Path]]:
    """The module's own file (None for an attribute), and the packages holding it."""
    parts = module.split(".")
    here = ROOT.joinpath(*parts)
    holders = _holders(tuple(parts[:-1]))
    if (here / "__init__.py").is_file():
        return here / "__init__.py", holders
    if here.with_suffix(".py").is_file():
        return here.with_suffix(".py"), holders
    return None, holders


def _holders(package: tuple[str, ...]) -> list[Path]:
    """The `__init__` of each package down to this one (a namespace package has none)."""
    inits = (ROOT.joinpath(*package[:n], "__init__.py") for n in range(1, len(package) + 1))
    return [init for init in inits if init.is_file()]


# ------------------------------------------------------------ building


def build(*, force: bool = False) -> Path:
    """Compile the core for the sources on disk (nothing to do if that build exists).

    The build lands in a temporary directory, is imported once in a fresh interpreter,
    then renamed into place: a failed or interrupted build leaves nothing behind.
    """
    from importlib.metadata import version

    mypy = version("mypy")
    files = sources()
    target = CORE_ROOT / digest(files, mypy)
    if (target / MANIFEST).is_file() and not force:
        return target
    import shutil
    import tempfile

    if shutil.which(os.environ.get("CC", "cc")) is None:
        raise CoreBuildError("no C compiler (cc) on PATH: install gcc (make installs it)")
    CORE_ROOT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CORE_ROOT, prefix=".building-") as tmp:
        staged, work = Path(tmp) / "core", Path(tmp) / "work"
        paths = ",".join(f"simulator/core/{name}.py" for name in modules())
        command = [sys.executable, "-c", _SETUP, paths, str(work / "c")]
        command += ["build_ext", "--build-lib", str(staged), "--build-temp", str(work / "o")]
        _run(command, "mypyc")
        # Loaded the way `activate` loads it, from where it was built.
        probe = (
            f"import sys; sys.path.append({str(staged)!r}); import simulator.core; "
            f"simulator.core.__path__.insert(0, {str(staged / 'simulator' / 'core')!r}); "
            "import simulator.compiled as c; left = c.running_as_source(); "
            "sys.exit(f'not compiled: {left}' if left else 0)"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), PURE_ENV: "1"}
        _run([sys.executable, "-c", probe], "the import check", env=env)
        if sources() != files or digest(files, mypy) != target.name:
            raise CoreBuildError("the sources changed during the build: build again")
        staged.joinpath(MANIFEST).write_text(
            "\n".join([mypy, sys.implementation.cache_tag, *files])
        )
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

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise CoreBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")

"""Reading user-editable TOML files into problems a person can act on."""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from acudevice.errors import InputError, Problem


def _field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def problems_from_validation(source: str, error: ValidationError) -> list[Problem]:
    problems = []
    errors = error.errors()
    # pydantic adds "too short" for a list whose items all failed; the item errors say more.
    failed_parents = {tuple(e["loc"][:-2]) for e in errors if len(e["loc"]) >= 2}
    for err in errors:
        if err["type"] == "too_short" and tuple(err["loc"]) in failed_parents:
            continue
        # Drop pydantic's union-branch tags so the path reads like the file.
        loc = list(err["loc"])
        if loc and loc[0] in ("pressure", "vibration"):
            loc = loc[1:]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(source, _field_path(loc), message))
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError([Problem(str(path), "", "file not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError([Problem(str(path), "", f"malformed TOML: {exc}")]) from None
    except OSError as exc:
        raise InputError([Problem(str(path), "", f"cannot read: {exc.strerror}")]) from None


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError([Problem(str(path), "", f"directory {path.parent} does not exist")])
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what a user expects of a plot
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

"""Reading user-editable TOML files into problems a person can act on."""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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


_T = TypeVar("_T")
_parsed: dict[tuple[str, Path], tuple[tuple[int, int, int], object]] = {}
"""Immutable results of reading a file, by what read it and the file's identity: a gateway
starting session after session (or a fleet of a thousand simulated bands, or a campaign)
reads each file once."""


def parsed_once(kind: str, path: Path, parse: Callable[[Path], _T]) -> _T:
    """`parse(path)`, again only when the file changed (modified, replaced or resized).

    `parse` must return something immutable: every caller shares the one result.
    """
    try:
        info = path.stat()
    except OSError:
        return parse(path)  # which says what is wrong with it
    version = (info.st_mtime_ns, info.st_size, info.st_ino)
    known = _parsed.get((kind, path))
    if known is not None and known[0] == version:
        return known[1]  # type: ignore[return-value]
    result = parse(path)
    _parsed[(kind, path)] = (version, result)
    return result


MAX_FILE_BYTES = 256 * 1024
"""A user's TOML file is at most this big: programs are a few hundred bytes."""


def read_toml(path: Path) -> dict[str, Any]:
    """A regular UTF-8 TOML file of bounded size, or an InputError naming the file.

    Devices, FIFOs and oversized files are refused before a byte is read, so `/dev/zero`
    or a pipe can neither exhaust memory nor block.
    """
    source = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError([Problem(source, "", "not a regular file")])
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(
                [Problem(source, "", f"{info.st_size} bytes; at most {MAX_FILE_BYTES} allowed")]
            )
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError([Problem(source, "", "file not found")]) from None
    except OSError as exc:
        raise InputError([Problem(source, "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError([Problem(source, "", f"more than {MAX_FILE_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            [Problem(source, "", f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError([Problem(source, "", f"malformed TOML: {exc}")]) from None
    except RecursionError:
        raise InputError([Problem(source, "", "nested too deeply to be a settings file")]) from None


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

"""Reading user-editable TOML files into problems a person can act on."""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from acudevice.errors import InputError, Problem
from acudevice.numbers import show
from acudevice.paths import PRIVATE_FILE_MODE


def _field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds: itself, or inside Optional, unions, tuples, lists, dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        return _models_in(args[0])
    if get_origin(annotation) is dict:
        return _models_in(args[1])
    return [model for arg in args for model in _models_in(arg)]


def _fields_along(
    root: Any, loc: Sequence[int | str]
) -> tuple[dict[str, FieldInfo], FieldInfo | None]:
    """The fields of the model at `loc` (list indexes, dict keys and union tags stepped over),
    and the last field named on the way (the one a bound error is about)."""
    models = _models_in(root)
    last: FieldInfo | None = None
    for part in loc:
        if not isinstance(part, str):
            continue
        found = [m.model_fields[part] for m in models if part in m.model_fields]
        if found:  # else an index, a dict key or a union's tag: the same models go on
            last = found[0]
            models = [model for info in found for model in _models_in(info.annotation)]
    return {name: info for m in models for name, info in m.model_fields.items()}, last


def _unknown_field(name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean `{close[0]}`?"
    return "unknown field; the fields here are " + ", ".join(names) if names else "unknown field"


_UNITS = (("_kpa", "kPa"), ("_hz", "Hz"), ("_percent", "%"), ("_s", "s"))
_BOUNDS = {
    "less_than_equal": ("le", "is above the {limit} of {bound}", "maximum"),
    "less_than": ("lt", "must be less than {bound}", ""),
    "greater_than_equal": ("ge", "is below the {limit} of {bound}", "minimum"),
    "greater_than": ("gt", "must be more than {bound}", ""),
}


def _unit(loc: Sequence[int | str]) -> str:
    """The unit a key names (`target_kpa`, `ramp_s`); a dict's key inherits its field's."""
    for part in reversed(loc):
        if isinstance(part, str):
            for suffix, unit in _UNITS:
                if part.endswith(suffix):
                    return unit
    return ""


def _bound_message(err: Any, loc: Sequence[int | str], info: FieldInfo | None) -> str | None:
    """ "8000 kPa is above the absolute ceiling of 40 kPa (rule absolute-ceiling)" for pydantic's
    "less than or equal to 40": the unit from the key, the limit and rule from the field."""
    kind = _BOUNDS.get(err["type"])
    value = err.get("input")
    if kind is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    key, text, default_limit = kind
    unit = _unit(loc)
    extra = info.json_schema_extra if info is not None else None
    meta = extra if isinstance(extra, dict) else {}
    message = f"{_with_unit(value, unit)} " + text.format(
        limit=str(meta.get("limit", default_limit)), bound=_with_unit(err["ctx"][key], unit)
    )
    rule = meta.get("rule")
    return message + (f" (rule {rule}, docs/safety.md)" if rule else "")


def _with_unit(value: float, unit: str) -> str:
    return f"{show(value)}{'' if unit in ('', '%') else ' '}{unit}"


def problems_from_validation(
    source: str, error: ValidationError, model: Any = None
) -> list[Problem]:
    """One Problem per pydantic error, in the file's words. With `model` (the class or type
    validated), an unknown field suggests the closest known one, and a bound names its unit,
    limit and rule."""
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
        if err["type"] == "finite_number":
            message = f"{show(err['input'])} is not a finite number"
        if err["type"] == "extra_forbidden":
            message = "unknown field"
            if model is not None and loc and isinstance(loc[-1], str):
                message = _unknown_field(loc[-1], _fields_along(model, err["loc"][:-1])[0])
        elif model is not None:
            message = _bound_message(err, loc, _fields_along(model, err["loc"])[1]) or message
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
def atomic_output(path: Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    `private`: health or session data (a profile, a session's report), 0600 from its creation
    to the end. Otherwise the usual mode a user expects of a file they asked for (a plot of a
    program, a test report): 0666 less the umask.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError([Problem(str(path), "", f"directory {path.parent} does not exist")])
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)  # mkstemp creates it 0600
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_private_text(path: Path, text: str) -> None:
    """Write `path` readable by its owner only from the moment it exists (no umask window);
    a file already there is made 0600 before a byte is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        fh.write(text)

"""How `--help` names values: plain flags show no type, values a word, arguments no braces.

Typer 0.29 prints `<bool>` after every flag, `<str>` beside named arguments and
`{PROGRAM}` or `{url}` in the usage line. These hooks are Typer's public-facing hooks for
that text; `tests/test_cli_help.py` fails if they move or the output regresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperArgument, TyperOption

if TYPE_CHECKING:
    import click

_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "bool": ""}


def _option_type(self: TyperOption, ctx: click.Context) -> str | None:
    if self.metavar is not None:
        return self.metavar
    if self.is_flag:
        return None
    label = str(TyperOption.display_type(self, ctx)).strip("<>")  # type: ignore[arg-type]
    if "|" in label:
        return f"[{label}]"
    return _WORDS.get(label, label.upper()) or None


def _argument_type(self: TyperArgument, ctx: click.Context) -> str | None:
    return None  # the name column already says what it is (`PROGRAM`)


def _argument_name(self: TyperArgument) -> str:
    return self.metavar if self.metavar is not None else str(self.name).upper()


def _argument_usage(self: TyperArgument) -> str:
    name = self.display_name_raw
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def install() -> None:
    """Replace Typer's hooks (once; again is harmless)."""
    patches: dict[tuple[type[Any], str], Any] = {
        (TyperOption, "display_type_rich"): _option_type,
        (TyperArgument, "display_type_rich"): _argument_type,
        (TyperArgument, "_usage_display_name"): _argument_usage,
        (TyperArgument, "display_name_raw"): property(_argument_name),
    }
    for (cls, name), func in patches.items():
        if not hasattr(cls, name):
            raise RuntimeError(f"typer changed: {cls.__name__}.{name} is gone")
        setattr(cls, name, func)

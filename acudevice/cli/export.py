"""`acudevice export`: the journal's sessions as CSV or JSON files, for a study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from acudevice.cli.common import out, reports_errors
from acudevice.export import collect, parse_since, write_export
from acudevice.store import Journal


@reports_errors
def export(
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="DIR", help="directory to write into")
    ],
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE", help="only sessions started on/after (YYYY-MM-DD)"),
    ] = None,
    fmt: Annotated[Literal["csv", "json"], typer.Option("--format", help="file format")] = "csv",
) -> None:
    """Write sessions, samples, comfort events and faults (units in column names)."""
    start = parse_since(since) if since is not None else None
    with Journal() as journal:
        tables = collect(journal, start)
    written = write_export(tables, output, fmt)
    counts = ", ".join(f"{len(rows)} {name.replace('_', ' ')}" for name, rows in tables.items())
    out.print(f"wrote {len(written)} files to {output}: {counts}", soft_wrap=True)

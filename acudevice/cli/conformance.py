"""`acudevice conformance URL`: the protocol's promises, checked against a live device."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from acudevice.cli.common import out, reports_errors
from acudevice.conformance import CheckResult, run_conformance

_STYLE = {"pass": "green", "fail": "red", "skip": "yellow"}


@reports_errors
def conformance(
    url: Annotated[str, typer.Argument(help="device URL: sim://, serial://, tcp://, ble://")],
) -> None:
    """Check a device (simulator or firmware) against docs/protocol.md; exit 1 on any failure."""

    def show(result: CheckResult) -> None:
        out.print(f"  [{_STYLE[result.status]}]{result.status}[/] {result.name}")

    out.print(f"conformance of {escape(url)}")
    results = asyncio.run(run_conformance(url, on_result=show))
    table = Table(title="Conformance")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, f"[{_STYLE[r.status]}]{r.status}[/]", escape(r.detail))
    out.print(table)
    failed = sum(r.status == "fail" for r in results)
    passed = sum(r.status == "pass" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    out.print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if failed:
        raise typer.Exit(1)

"""`acudevice conformance URL`: the protocol's promises, checked against a live device."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated
from xml.etree import ElementTree as ET

import typer

from acudevice.cli.common import out, reports_errors, styled
from acudevice.conformance import CheckResult, run_conformance
from acudevice.files import atomic_output

_STYLE = {"pass": "green", "fail": "red", "skip": "yellow"}


def junit_xml(url: str, results: list[tuple[CheckResult, float]]) -> bytes:
    """One JUnit test suite, one test case per check: what CI systems show as test results."""
    suite = ET.Element(
        "testsuite",
        name="acudevice conformance",
        tests=str(len(results)),
        failures=str(sum(r.status == "fail" for r, _ in results)),
        skipped=str(sum(r.status == "skip" for r, _ in results)),
        errors="0",
        time=f"{sum(t for _, t in results):.3f}",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="device", value=url)
    for result, seconds in results:
        case = ET.SubElement(
            suite, "testcase", classname="conformance", name=result.name, time=f"{seconds:.3f}"
        )
        if result.status == "fail":
            ET.SubElement(case, "failure", message=result.detail).text = result.detail
        elif result.status == "skip":
            ET.SubElement(case, "skipped", message=result.detail)
        else:
            ET.SubElement(case, "system-out").text = result.detail
    text: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return text


@reports_errors
def conformance(
    url: Annotated[str, typer.Argument(help="device URL: sim://, serial://, tcp://, ble://")],
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="also write JUnit XML for CI")
    ] = None,
) -> None:
    """Check a device (simulator or firmware) against docs/protocol.md; exit 1 on any failure.

    The band is brought to rest before each check and left at rest at the end.
    """
    timed: list[tuple[CheckResult, float]] = []
    started = time.monotonic()

    def show(result: CheckResult) -> None:
        nonlocal started
        timed.append((result, time.monotonic() - started))
        started = time.monotonic()
        if not as_json:
            out.print(
                styled(
                    "  ",
                    (f"{result.status:<4}", _STYLE[result.status]),
                    f" {result.name}: {result.detail}",
                ),
                soft_wrap=True,
            )

    if not as_json:
        out.print(f"conformance of {url}")
    results = asyncio.run(run_conformance(url, on_result=show))
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    if junit is not None:
        with atomic_output(junit) as tmp:
            tmp.write_bytes(junit_xml(url, timed))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "device": url,
                    "results": [
                        {"name": r.name, "status": r.status, "detail": r.detail} for r in results
                    ],
                    "passed": counts["pass"],
                    "failed": counts["fail"],
                    "skipped": counts["skip"],
                }
            )
        )
    else:
        out.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    if counts["fail"]:
        raise typer.Exit(1)

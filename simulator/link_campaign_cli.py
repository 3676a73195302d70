"""`acudevice-sim link-campaign`: run the link-fault campaign and report it (docs/simulator.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from simulator.core.errors import SimOptionError
from simulator.link_campaign import CampaignResult, CutResult, run_link_campaign
from simulator.link_campaign_report import failed, print_tables, summary
from simulator.link_cuts import Transport

QUIET = ("acudevice", "simulator", "acudevice-sim", "bumble", "bleak")
"""Loggers whose expected noise (links lost, heartbeats unanswered) is the campaign's subject."""


def check_args(bands: int, disconnects: int) -> None:
    """Refuse bad input before anything runs (exit 2 with one line)."""
    if bands < 1:
        raise SimOptionError(f"--bands {bands}: must be at least 1")
    if disconnects < 1:
        raise SimOptionError(f"--disconnects {disconnects}: must be at least 1")


@contextlib.contextmanager
def _quiet_and_apart(folder: Path) -> Iterator[None]:
    """Keep the campaign's noise off the terminal, and its BLE bonds and paired bands in
    `folder` (never the user's own), for as long as it runs."""
    loggers = [logging.getLogger(name) for name in QUIET]
    levels = [logger.level for logger in loggers]
    home = os.environ.get("ACUDEVICE_HOME")
    os.environ["ACUDEVICE_HOME"] = str(folder / "home")
    # Bumble writes its bond store as the umask allows; acudevice would tighten it on the
    # next connect and say so, once per band. These bonds are the simulation's own.
    umask = os.umask(0o077)
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        os.umask(umask)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if home is None:
            os.environ.pop("ACUDEVICE_HOME", None)
        else:
            os.environ["ACUDEVICE_HOME"] = home


def run(*, transport: Transport, bands: int, disconnects: int, seed: int, as_json: bool) -> int:
    check_args(bands, disconnects)
    with (
        tempfile.TemporaryDirectory(prefix="acudevice-link-campaign-") as tmp,
        _quiet_and_apart(Path(tmp)),
    ):
        result = asyncio.run(_run(transport, bands, disconnects, seed, Path(tmp), as_json))
    figures = summary(result)
    if as_json:
        print(json.dumps(figures))
    else:
        print_tables(figures)
    return 1 if failed(figures) else 0


async def _run(
    transport: Transport, bands: int, disconnects: int, seed: int, folder: Path, quiet: bool
) -> CampaignResult:
    if quiet:
        return await run_link_campaign(transport, bands, disconnects, seed, folder)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("disconnects", total=disconnects)
        bad = 0

        def tick(cut: CutResult) -> None:
            nonlocal bad
            bad += cut.verdict in ("neither", "hung")
            label = f"disconnects ({bad} failing)" if bad else "disconnects"
            progress.update(task, advance=1, description=label)

        return await run_link_campaign(transport, bands, disconnects, seed, folder, on_cut=tick)

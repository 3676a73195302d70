"""`acudevice-sim campaign`: run the safety campaign and report it (docs/simulator.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from simulator.campaign import ACTIONS, RunResult, rerun_worst, run_campaign
from simulator.campaign_report import print_table, summary, write_png
from simulator.core.errors import SimOptionError
from simulator.core.faults import FaultPlan


def check_args(runs: int, jobs: int, faults: list[str], actions: list[str]) -> None:
    """Refuse bad input before anything runs (exit 2 with one line)."""
    if runs < 1:
        raise SimOptionError(f"--runs {runs}: must be at least 1")
    if jobs < 1:
        raise SimOptionError(f"--jobs {jobs}: must be at least 1")
    FaultPlan.parse(faults)  # names the bad spec
    unknown = sorted(set(actions) - set(ACTIONS))
    if unknown:
        raise SimOptionError(f"--action {unknown[0]!r}: known actions: {', '.join(ACTIONS)}")


def run(
    *,
    runs: int,
    seed: int,
    as_json: bool,
    png: Path | None,
    jobs: int,
    faults: list[str],
    actions: list[str],
) -> int:
    check_args(runs, jobs, faults, actions)
    # Expected noise from sessions under fault (heartbeats unanswered, links lost) is the
    # campaign's subject, not news: keep it off the terminal.
    loggers = [logging.getLogger(name) for name in ("acudevice", "simulator")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        results, wall = asyncio.run(_run(runs, seed, as_json, jobs, faults, actions))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    figures = summary(results, wall)
    if png is not None:
        worst = asyncio.run(rerun_worst(results, count=3))
        write_png(png, results, worst)
    if as_json:
        print(json.dumps(figures))
    else:
        print_table(figures)
    return 1 if figures["exceedances"] or figures["hangs"] else 0


async def _run(
    runs: int, seed: int, quiet: bool, jobs: int, faults: list[str], actions: list[str]
) -> tuple[list[RunResult], float]:
    kwargs = {"faults": faults or None, "actions": tuple(actions) or ACTIONS, "jobs": jobs}
    if quiet:
        return await run_campaign(runs, seed, **kwargs)  # type: ignore[arg-type]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("sessions", total=runs)
        bad = 0

        def tick(result: RunResult) -> None:
            nonlocal bad
            bad += result.exceeded or result.hang
            label = f"sessions ({bad} failing)" if bad else "sessions"
            progress.update(task, advance=1, description=label)

        return await run_campaign(runs, seed, on_result=tick, **kwargs)  # type: ignore[arg-type]

"""The campaign's summary: figures, a table or one JSON object, and an optional PNG."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from simulator.campaign import RunResult


def _percentile(values: list[int], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))])


def summary(results: list[RunResult], wall_seconds: float) -> dict[str, Any]:
    """One JSON-ready object; levels in kPa (band) or intensity (pad) via `_surface`."""
    vents = [r.vent_ms for r in results if r.vent_ms is not None]
    worst = max(results, key=lambda r: r.worst_margin, default=None)
    device_s = sum(r.device_ms for r in results) / 1000.0
    return {
        "runs": len(results),
        "samples": sum(r.samples for r in results),
        "exceedances": sum(1 for r in results if r.exceeded),
        "exceedance_samples": sum(r.exceedance_samples for r in results),
        "worst_overshoot": None if worst is None else _surface(worst, worst.worst_margin),
        "worst_run": None if worst is None else _describe(worst),
        "vent_s": {
            "count": len(vents),
            "median": None if not vents else statistics.median(vents) / 1000.0,
            "p99": None if not vents else (_percentile(vents, 0.99) or 0.0) / 1000.0,
            "max": None if not vents else max(vents) / 1000.0,
        },
        "journal_mismatches": sum(1 for r in results if not r.journal_ok and not r.hang),
        "hangs": sum(1 for r in results if r.hang),
        "slow_under_load": sum(1 for r in results if r.slow_under_load),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "by_fault": by_fault(results),
        "failures": [_describe(r) for r in results if r.exceeded or r.hang][:20],
        "device_seconds": round(device_s, 1),
        "wall_seconds": round(wall_seconds, 2),
        "realtime_factor": round(device_s / wall_seconds) if wall_seconds > 0 else None,
    }


def by_fault(results: list[RunResult]) -> dict[str, dict[str, Any]]:
    """Per device model and fault kind: runs, exceedances, and the worst true level against
    the cap in force (negative: it stayed under), in the person's unit."""
    groups: dict[str, list[RunResult]] = {}
    for run in results:
        groups.setdefault(f"{run.scenario.model} {run.scenario.kind}", []).append(run)
    table: dict[str, dict[str, Any]] = {}
    for key in sorted(groups):
        runs = groups[key]
        worst = max(runs, key=lambda r: r.worst_margin)
        table[key] = {
            "runs": len(runs),
            "exceedances": sum(1 for r in runs if r.exceeded),
            "worst_vs_cap": _surface(worst, worst.worst_margin),
            "ended_faulted": sum(1 for r in runs if r.outcome == "faulted"),
        }
    return table


def _surface(run: RunResult, level: float) -> dict[str, float | str]:
    """Over the cap in the person's unit: kPa for the band, intensity for the pad."""
    unit = "kPa" if run.scenario.model.startswith("wristband") else "intensity"
    return {"value": round(level / 1000.0, 3), "unit": unit}


def _describe(run: RunResult) -> str:
    s = run.scenario
    cut = f" link-cut@{s.link_cut_ms}ms" if s.link_cut_ms is not None else ""
    return (
        f"seed {s.seed}: {s.program} on {s.model}, fault {s.fault or 'none'}{cut}, "
        f"action {s.action} -> {run.outcome}"
    )


def print_table(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="safety campaign (true plant level against the cap)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    vent = figures["vent_s"]
    worst = figures["worst_overshoot"]

    def sec(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} s"

    rows = [
        ("sessions run", f"{figures['runs']}"),
        ("level samples checked", f"{figures['samples']:,}"),
        ("cap exceedances (runs)", f"{figures['exceedances']}"),
        (
            "worst true level above the cap",
            "-" if worst is None else f"{worst['value']:+.3f} {worst['unit']}",
        ),
        ("vent fault -> vented: median", sec(vent["median"])),
        ("vent fault -> vented: p99", sec(vent["p99"])),
        ("vent fault -> vented: max", sec(vent["max"])),
        ("journal mismatches", f"{figures['journal_mismatches']}"),
        ("hangs", f"{figures['hangs']}"),
        ("timed out under load, ended when rerun alone", f"{figures['slow_under_load']}"),
        ("device time", f"{figures['device_seconds']:,.0f} s"),
        ("wall time", f"{figures['wall_seconds']:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console(markup=False, emoji=False)  # fault specs and rule ids print as written
    console.print(table)
    faults = Table(title="by device and fault: worst true level against the cap in force")
    for column in ("device fault", "runs", "exceedances", "worst vs cap", "ended faulted"):
        faults.add_column(column, justify="left" if column == "device fault" else "right")
    for key, row in figures["by_fault"].items():
        worst_row = row["worst_vs_cap"]
        faults.add_row(
            key,
            str(row["runs"]),
            str(row["exceedances"]),
            f"{worst_row['value']:+.3f} {worst_row['unit']}",
            str(row["ended_faulted"]),
        )
    console.print(faults)
    for failure in figures["failures"]:
        console.print(Text.assemble(("FAIL", "red"), f" {failure}"))


def write_png(path: Path, results: list[RunResult], worst: list[RunResult]) -> None:
    """Vent-time histogram, and the worst runs' true level against the cap in force."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (hist, traj) = plt.subplots(1, 2, figsize=(12, 4.5))
    vents = [r.vent_ms / 1000.0 for r in results if r.vent_ms is not None]
    hist.hist(vents, bins=40, color="tab:blue")
    hist.set_xlabel("fault to vented (s, device time)")
    hist.set_ylabel("runs")
    hist.set_title(f"vent time, {len(vents)} faulted runs")
    for run in worst:
        if not run.trajectory:
            continue
        t = [p[0] / 1000.0 for p in run.trajectory]
        line = traj.plot(t, [p[1] / 1000.0 for p in run.trajectory], label=_describe(run))
        traj.plot(t, [p[2] / 1000.0 for p in run.trajectory], "--", color=line[0].get_color())
    traj.set_xlabel("device time (s)")
    traj.set_ylabel("true level (kPa or intensity); dashed: cap in force")
    traj.set_title("closest approaches to the cap")
    traj.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The study report as a picture: participants down, days across, minutes as colour.

Each cell says sessions completed/started, faults, stops and "too strong" presses; for an
enrolled participant, on each day of their timetable up to today, windows done of the day's
windows, and late, failed and missed ones, a cell with a missed window framed in red.
matplotlib is imported here, on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acudevice.study.report import Cell, Report

MISSED = "#c00000"


def _text(cell: Cell | None, kept: dict[str, Any] | None) -> str:
    lines = []
    if cell is not None:
        lines.append(f"{cell.completed}/{cell.started}")
        if cell.faulted:
            lines.append(f"{cell.faulted} fault")
        if cell.stopped:
            lines.append(f"{cell.stopped} stop")
        if cell.too_strong:
            lines.append(f"{cell.too_strong}× strong")
    if kept is not None:
        lines.append(f"done {kept['done']}/{kept['windows']}")
        lines += [f"{kept[k]} {k}" for k in ("late", "failed", "missed", "due") if kept[k]]
    return "\n".join(lines)


def draw(report: Report, path: Path) -> None:
    """The heatmap with the quiet lists (and, unblinded, the arms) below it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    people, days = report.participants or ["(none)"], report.days or ["(no sessions)"]
    by_key = {(c.participant, c.day): c for c in report.cells}
    kept = {(a["participant"], a["date"]): a for a in report.adherence}
    grid = [[float("nan")] * len(days) for _ in people]
    width = min(max(6.0, 1.2 * len(days) + 2.5), 40.0)
    height = min(max(3.5, 0.75 * len(people) + 2.8), 40.0)
    fig, ax = plt.subplots(figsize=(width, height))
    for i, who in enumerate(people):
        for j, day in enumerate(days):
            cell = by_key.get((who, day))
            if cell is not None:
                grid[i][j] = cell.minutes
    most = max((c.minutes for c in report.cells), default=0.0) or 1.0
    # the darkest cell stays mid-green, so the counts written on it stay readable
    image = ax.imshow(grid, cmap="Greens", aspect="auto", vmin=0, vmax=most * 1.6)
    for i, who in enumerate(people):
        for j, day in enumerate(days):
            cell, day_kept = by_key.get((who, day)), kept.get((who, day))
            if cell is None and day_kept is None:
                continue
            alarm = bool(cell and cell.faulted) or bool(day_kept and day_kept["missed"])
            ax.text(j, i, _text(cell, day_kept), ha="center", va="center", fontsize=6.5,
                    color=MISSED if alarm else "black",
                    fontweight="bold" if alarm else "normal")  # fmt: skip
            if day_kept is not None and day_kept["missed"]:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False,
                                       edgecolor=MISSED, linewidth=2.2))  # fmt: skip
    names = [
        (p or "(no participant)") + (f" [{report.arms[p]}]" if p in report.arms else "")
        for p in people
    ]
    ax.set_yticks(range(len(people)), names)
    ax.set_xticks(range(len(days)), [d[5:] for d in days], rotation=45, ha="right")
    ax.set_xlabel("day (month-day; an enrolled participant's local date, else UTC)")
    ax.set_title(
        "Sessions completed/started per participant and day; windows done, late, missed\n"
        "(colour: minutes of stimulation; red frame: a missed window)",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="minutes of stimulation")
    quiet = [f"{q['participant']} ({q['days']} d)" for q in report.quiet_participants]
    silent = [
        f"{g['gateway']} ({'never' if g['hours'] is None else str(g['hours']) + ' h'})"
        for g in report.quiet_gateways
    ]
    lines = [
        f"No session lately: {', '.join(quiet) or 'nobody'}",
        f"Gateways silent: {', '.join(silent) or 'none'}",
    ]
    for arm, counts in report.arm_totals.items():
        lines.append(
            f"Arm {arm}: done {counts['done']}, late {counts['late']}, failed {counts['failed']}"
            f", missed {counts['missed']} of {counts['windows'] - counts['due']} windows past"
        )
    if report.unblinded:
        lines.append("UNBLINDED report (the unblinding is logged)")
    lines.append(f"Generated {report.generated_utc}")
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=8, va="bottom")
    fig.subplots_adjust(bottom=min(0.5, 0.12 + 0.045 * len(lines)))
    fig.savefig(path, dpi=110)
    plt.close(fig)

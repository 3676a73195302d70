"""Pictures people would rather look at than tables: pressure-time curves.

matplotlib is imported when a picture is drawn, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acudevice.files import atomic_output
from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA
from acudevice.plan.schedule import Schedule

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Line:
    """A horizontal reference line: a hard cap, a soft limit, a threshold."""

    level: int
    label: str
    style: str  # "hard", "ceiling", "soft" or "info"
    start_s: float = 0.0
    """Where it begins: a comfortable maximum remembered at a press is drawn from the press."""


@dataclass(frozen=True)
class Steps:
    """A level that steps to a new value at given times (a cap lowered during a session):
    `(t_s, level)` pairs, the first at 0, held until the next and to the end."""

    points: tuple[tuple[float, int], ...]
    label: str
    style: str

    def level_at(self, t_s: float) -> int:
        level = self.points[0][1]
        for start, value in self.points:
            if start <= t_s:
                level = value
        return level


@dataclass(frozen=True)
class Stop:
    """Where a session was stopped short, and whether the band vented there."""

    t_s: float
    label: str
    vented: bool


_STYLES: dict[str, dict[str, Any]] = {
    "hard": {"color": "#c0392b", "linestyle": "-", "linewidth": 1.8},
    "ceiling": {"color": "#641e16", "linestyle": "-.", "linewidth": 1.4},
    "soft": {"color": "#e67e22", "linestyle": "--", "linewidth": 1.2},
    "info": {"color": "#7f8c8d", "linestyle": ":", "linewidth": 1.0},
}
HEADROOM = 1.15
"""The y axis ends this far above the plan, the measurements and the cap, so the plan
fills the picture; a line further up (the absolute ceiling) is named in a note instead."""
PLANNED = "#2471a3"
MEASURED = "#145a32"


def _scale(actuator: str) -> tuple[float, str]:
    if actuator == "pressure":
        return float(KPA_TO_PA), "pressure (kPa)"
    return float(FRACTION_TO_PERMILLE), "intensity (0-1)"


def schedule_figure(
    schedule: Schedule,
    *,
    title: str,
    lines: Sequence[Line] = (),
    measured: Sequence[tuple[float, float]] = (),
    events: Sequence[tuple[float, str]] = (),
    steps: Sequence[Steps] = (),
    stop: Stop | None = None,
) -> Figure:
    """Planned curve, measured samples, reference lines (some stepping down), events and
    where the session stopped, legend below the plot."""
    scale, ylabel = _scale(schedule.actuator)
    times = [0.0]
    levels = [schedule.segments[0].from_level / scale if schedule.segments else 0.0]
    for seg in schedule.segments:
        times.append(seg.end_ms / 1000)
        levels.append(seg.to_level / scale)
    values = [v / scale for _, v in measured]
    near = [ln.level / scale for ln in lines if ln.style != "ceiling"]
    near += [level / scale for step in steps for _, level in step.points]
    top = max([*levels, *values, *near, 0.01]) * HEADROOM
    end = max(times[-1], 1.0)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=110)
    if measured:
        # The plan as a wide pale band, the measurement a thin dark line on top of it:
        # where they differ is where the line leaves the band.
        ax.plot(times, levels, color=PLANNED, linewidth=7, alpha=0.3, label="planned")
        ax.plot([t for t, _ in measured], values, color=MEASURED, linewidth=1.1, label="measured")
    else:
        ax.plot(times, levels, color=PLANNED, linewidth=2, label="planned")
    for step in steps:
        xs = [t for t, _ in step.points] + [end]
        ys = [level / scale for _, level in step.points]
        style: dict[str, Any] = dict(_STYLES[step.style])
        ax.step(xs, [*ys, ys[-1]], where="post", label=step.label, **style)
    off_chart = []
    for line in lines:
        level = line.level / scale
        if level > top:
            off_chart.append(line.label)
            continue
        # Over the steps: a comfortable maximum often sits on the cap it lowered.
        style = dict(_STYLES[line.style], zorder=3)
        if line.start_s > 0:
            ax.hlines(level, line.start_s, end, label=line.label, **style)
        else:
            ax.axhline(level, label=line.label, **style)
    if off_chart:
        ax.text(
            0.995,
            0.98,
            "above the chart: " + "; ".join(off_chart),
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color=_STYLES["ceiling"]["color"],
        )
    for t_s, label in events:
        ax.axvline(t_s, color="#8e44ad", linestyle="-.", linewidth=1)
        ax.annotate(
            label, (t_s, top * 0.9), rotation=90, fontsize=7, va="top", ha="right", color="#8e44ad"
        )
    if stop is not None:
        ax.axvline(stop.t_s, color=_STYLES["hard"]["color"], linewidth=1.6)
        if stop.vented:
            ax.axvspan(stop.t_s, end, color="#7f8c8d", alpha=0.15, label="vented")
        ax.annotate(
            stop.label,
            (stop.t_s, top * 0.98),
            rotation=90,
            fontsize=8,
            va="top",
            ha="left",
            color=_STYLES["hard"]["color"],
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(0, end)
    ax.set_ylim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_schedule(
    schedule: Schedule,
    path: Path,
    *,
    title: str,
    lines: Sequence[Line] = (),
    measured: Sequence[tuple[float, float]] = (),
    events: Sequence[tuple[float, str]] = (),
    steps: Sequence[Steps] = (),
    stop: Stop | None = None,
    private: bool = False,
) -> Path:
    """`schedule_figure` to PNG or SVG by the file's suffix; `private` (a session's report,
    health data) writes it 0600 from its creation."""
    fig = schedule_figure(
        schedule,
        title=title,
        lines=lines,
        measured=measured,
        events=events,
        steps=steps,
        stop=stop,
    )
    import matplotlib.pyplot as plt

    with atomic_output(path, private=private) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)

"""Pictures people would rather look at than tables: pressure-time curves.

matplotlib is imported when a picture is drawn, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from acudevice.files import atomic_output
from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA
from acudevice.plan.schedule import Schedule


@dataclass(frozen=True)
class Line:
    """A horizontal reference line: a hard cap, a soft limit, a threshold."""

    level: int
    label: str
    style: str  # "hard", "soft" or "info"


_STYLES = {
    "hard": {"color": "#c0392b", "linestyle": "-", "linewidth": 1.6},
    "soft": {"color": "#e67e22", "linestyle": "--", "linewidth": 1.2},
    "info": {"color": "#7f8c8d", "linestyle": ":", "linewidth": 1.0},
}


def _scale(actuator: str) -> tuple[float, str]:
    if actuator == "pressure":
        return float(KPA_TO_PA), "pressure (kPa)"
    return float(FRACTION_TO_PERMILLE), "intensity (0-1)"


def plot_schedule(
    schedule: Schedule,
    path: Path,
    *,
    title: str,
    lines: Sequence[Line] = (),
    measured: Sequence[tuple[float, float]] = (),
    events: Sequence[tuple[float, str]] = (),
) -> Path:
    """Planned curve (and measured samples, events) to PNG or SVG by the file's suffix."""
    scale, ylabel = _scale(schedule.actuator)
    times = [0.0]
    levels = [schedule.segments[0].from_level / scale if schedule.segments else 0.0]
    for seg in schedule.segments:
        times.append(seg.end_ms / 1000)
        levels.append(seg.to_level / scale)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    ax.plot(times, levels, color="#2471a3", linewidth=2, label="planned")
    if measured:
        ax.plot(
            [t for t, _ in measured],
            [v / scale for _, v in measured],
            color="#27ae60",
            linewidth=1,
            alpha=0.85,
            label="measured",
        )
    for line in lines:
        ax.axhline(line.level / scale, label=line.label, **_STYLES[line.style])  # type: ignore[arg-type]
    for t_s, label in events:
        ax.axvline(t_s, color="#8e44ad", linestyle="-.", linewidth=1)
        ax.annotate(
            label,
            (t_s, ax.get_ylim()[1] * 0.95),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color="#8e44ad",
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(0, max(times[-1], 1.0))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return Path(path)

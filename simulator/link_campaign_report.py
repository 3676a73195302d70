"""The link campaign's figures: one JSON object, or tables for people."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

from simulator.link_campaign import CampaignResult, CutResult

VERDICTS = ("recovered", "vented", "neither", "hung")


def _worst(values: list[float], digits: int) -> float | None:
    return round(max(values), digits) if values else None


def _recoveries(cuts: list[CutResult]) -> list[float]:
    return [c.recovery_s for c in cuts if c.verdict == "recovered" and c.recovery_s is not None]


def _vents(cuts: list[CutResult]) -> list[float]:
    return [c.vent_s for c in cuts if c.vent_s is not None and not math.isnan(c.vent_s)]


def _figures(cuts: list[CutResult]) -> dict[str, Any]:
    counts: Counter[str] = Counter(c.verdict for c in cuts)
    return {
        "disconnects": len(cuts),
        **{verdict: counts.get(verdict, 0) for verdict in VERDICTS},
        "worst_recovery_s": _worst(_recoveries(cuts), 2),
        "worst_vent_s": _worst(_vents(cuts), 3),
    }


def summary(result: CampaignResult) -> dict[str, Any]:
    """Every figure, JSON-ready. `worst_vent_s`: from the last frame the band heard on the
    link that was cut to the start of its vent (its watchdog's, or the host's ESTOP)."""
    cuts = sorted(result.cuts, key=lambda c: c.cut.index)
    recoveries = _recoveries(cuts)
    sessions = result.sessions
    by_kind: dict[str, list[CutResult]] = {}
    for cut in cuts:
        by_kind.setdefault(cut.cut.kind, []).append(cut)
    return {
        "transport": result.transport,
        "bands": result.bands,
        "seed": result.seed,
        **_figures(cuts),
        "median_recovery_s": round(statistics.median(recoveries), 2) if recoveries else None,
        "vents_by_reason": dict(Counter(c.vent_reason for c in cuts if c.vent_reason)),
        "journal_mismatches": sum(1 for s in sessions if not s.journal_ok),
        "sessions": len(sessions),
        "session_outcomes": dict(Counter(s.outcome for s in sessions)),
        "by_kind": {kind: _figures(group) for kind, group in sorted(by_kind.items())},
        "failures": [
            f"{c.cut.describe()}: {c.verdict}: {c.detail}"
            for c in cuts
            if c.verdict in ("neither", "hung")
        ][:20]
        + [f"session {s.session_id}: {s.detail}" for s in sessions if not s.journal_ok][:20],
        "wall_s": round(result.wall_s, 1),
    }


def failed(figures: dict[str, Any]) -> bool:
    """A hang, a disconnect that was neither recovered nor vented, or a journal that
    disagrees with its session."""
    return bool(figures["hung"] or figures["neither"] or figures["journal_mismatches"])


def print_tables(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def sec(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    title = f"link campaign: {figures['transport']}, {figures['bands']} band(s)"
    table = Table(title=f"{title}, seed {figures['seed']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("disconnects", str(figures["disconnects"])),
        ("recovered (running again on the same band)", str(figures["recovered"])),
        ("vented (ended link-lost, band vented)", str(figures["vented"])),
        ("neither", str(figures["neither"])),
        ("hung", str(figures["hung"])),
        ("cut -> running again: median", sec(figures["median_recovery_s"])),
        ("cut -> running again: worst", sec(figures["worst_recovery_s"])),
        ("last frame heard -> vent: worst", sec(figures["worst_vent_s"])),
        ("vents by reason", ", ".join(f"{k} {v}" for k, v in figures["vents_by_reason"].items())),
        ("sessions", str(figures["sessions"])),
        ("journal mismatches", str(figures["journal_mismatches"])),
        ("wall time", sec(figures["wall_s"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console(markup=False, emoji=False)  # details quote URLs and errors as they are
    console.print(table)
    kinds = Table(title="by way of failing")
    for column in ("cut", *VERDICTS, "worst recovery", "worst vent"):
        kinds.add_column(column, justify="left" if column == "cut" else "right")
    for kind, row in figures["by_kind"].items():
        kinds.add_row(
            kind,
            *(str(row[v]) for v in VERDICTS),
            sec(row["worst_recovery_s"]),
            sec(row["worst_vent_s"]),
        )
    console.print(kinds)
    for failure in figures["failures"]:
        console.print(Text.assemble(("FAIL", "red"), f" {failure}"))

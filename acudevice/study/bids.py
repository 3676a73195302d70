"""A study as a BIDS-style tree: physiological recordings per participant and session.

    dataset_description.json, README, participants.tsv, participants.json
    sub-<p>/sub-<p>_sessions.tsv
    sub-<p>/ses-<s>/beh/sub-<p>_ses-<s>_task-<program>_physio.tsv.gz   (no header row)
    sub-<p>/ses-<s>/beh/sub-<p>_ses-<s>_task-<program>_physio.json     (the sidecar)

The physio file has one row per 250 ms (SamplingFrequency 4 Hz, the journal's rate) from the
first sample on; per channel `measured_<unit>_ch<c>`, `target_<unit>_ch<c>` and
`state_ch<c>` (the firmware state's number: the sidecar names them); `n/a` where a channel
has no sample. BIDS labels are letters and digits only, so a pseudonym loses its `-` and
`_` in its label (`P-01` becomes `sub-P01`); `participants.tsv` keeps the pseudonym beside
it, and a label two pseudonyms would share gets a numeric suffix. A session's label is its
UUID without dashes; sessions of no participant go under `sub-unassigned`.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from acudevice import __version__
from acudevice.errors import InputError, Problem
from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA
from acudevice.protocol import FirmwareState
from acudevice.study.export import Selection, commit_files, prepare_directory

SAMPLING_HZ = 4.0
STEP_MS = 250
BIDS_VERSION = "1.8.0"
UNASSIGNED = "unassigned"


def labels(pseudonyms: Iterable[str | None]) -> dict[str | None, str]:
    """A distinct BIDS label (letters and digits) for each pseudonym."""
    out: dict[str | None, str] = {}
    used: set[str] = set()
    for name in sorted(set(pseudonyms), key=lambda p: (p is None, p or "")):
        base = UNASSIGNED if name is None else re.sub(r"[^A-Za-z0-9]", "", name) or "p"
        label, n = base, 1
        while label.lower() in used:
            n += 1
            label = f"{base}{n}"
        used.add(label.lower())
        out[name] = label
    return out


def _tsv(rows: Iterable[Iterable[object]]) -> str:
    return "".join("\t".join("n/a" if v is None else str(v) for v in row) + "\n" for row in rows)


def physio_rows(
    samples: list[tuple[int, int, int, int, int]], channels: list[int], scale: float
) -> tuple[float, list[list[object]]]:
    """(StartTime in s, rows on the 4 Hz grid) from (channel, t_ms, measured, target, state)."""
    first = min(t for _, t, *_ in samples)
    start = first - first % STEP_MS
    last = max(t for _, t, *_ in samples)
    width = 3 * len(channels)
    grid: list[list[object]] = [[None] * width for _ in range((last - start) // STEP_MS + 1)]
    column = {ch: 3 * i for i, ch in enumerate(channels)}
    for ch, t, measured, target, state in samples:
        row = grid[(t - start) // STEP_MS]
        c = column[ch]
        row[c], row[c + 1], row[c + 2] = measured / scale, target / scale, state
    return start / 1000, grid


def sidecar(actuator: str, channels: list[int], start_s: float, program: str) -> dict[str, Any]:
    unit, units = ("kpa", "kPa") if actuator == "pressure" else ("intensity", "1")
    names: list[str] = []
    described: dict[str, Any] = {}
    states = {str(s.value): s.name for s in FirmwareState}
    for ch in channels:
        for kind in ("measured", "target"):
            name = f"{kind}_{unit}_ch{ch}"
            names.append(name)
            described[name] = {
                "Description": f"{kind} {actuator} on channel {ch}",
                "Units": units,
            }
        names.append(f"state_ch{ch}")
        described[f"state_ch{ch}"] = {
            "Description": f"firmware state of channel {ch}",
            "Levels": states,
        }
    return {
        "SamplingFrequency": SAMPLING_HZ,
        "StartTime": start_s,
        "Columns": names,
        "TaskName": program,
        **described,
    }


SESSIONS_SIDECAR = {
    "program": {"Description": "the acudevice program the session ran"},
    "outcome": {"Description": "how the session ended (completed, stopped, faulted, ...)"},
}


def _gzip(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


async def export_bids(conn: Any, directory: Path, selection: Selection) -> list[Path]:
    """Write the tree into `directory`; the files written."""
    prepare_directory(directory)
    where, args = selection.where()
    sessions = await conn.fetch(
        f"SELECT * FROM sessions se WHERE {where} ORDER BY se.started_at, se.session_uuid", *args
    )
    subject = labels(s["participant"] for s in sessions)
    files: dict[Path, bytes] = {}
    per_subject: dict[str | None, list[list[object]]] = {}
    for s in sessions:
        sub, ses = subject[s["participant"]], s["session_uuid"].hex
        task = re.sub(r"[^A-Za-z0-9]", "", s["program"]) or "session"
        samples = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT channel, t_ms, measured_level, target_level, state FROM samples"
                " WHERE session_uuid = $1 ORDER BY t_ms, channel",
                s["session_uuid"],
            )
        ]
        per_subject.setdefault(s["participant"], []).append(
            [
                f"ses-{ses}",
                s["started_at"].strftime("%Y-%m-%dT%H:%M:%S"),
                s["program"],
                s["outcome"],
            ]
        )
        if not samples:
            continue
        channels = sorted({r[0] for r in samples})
        scale = KPA_TO_PA if s["actuator"] == "pressure" else FRACTION_TO_PERMILLE
        start_s, rows = physio_rows(samples, channels, scale)
        stem = Path(f"sub-{sub}", f"ses-{ses}", "beh", f"sub-{sub}_ses-{ses}_task-{task}_physio")
        files[stem.with_suffix(".tsv.gz")] = _gzip(_tsv(rows))
        meta = sidecar(s["actuator"], channels, start_s, s["program"])
        files[stem.with_suffix(".json")] = (json.dumps(meta, indent=1) + "\n").encode()
    for who, rows in per_subject.items():
        path = Path(f"sub-{subject[who]}", f"sub-{subject[who]}_sessions.tsv")
        files[path] = _tsv([["session_id", "acq_time", "program", "outcome"], *rows]).encode()
        files[path.with_suffix(".json")] = _json(SESSIONS_SIDECAR)
    participants: list[list[object]] = [["participant_id", "pseudonym", "sessions"]]
    participants += [
        [f"sub-{subject[who]}", who, len(rows)]
        for who, rows in sorted(per_subject.items(), key=lambda kv: subject[kv[0]])
    ]
    files[Path("participants.tsv")] = _tsv(participants).encode()
    files[Path("participants.json")] = _json(
        {
            "pseudonym": {"Description": "the study's pseudonym (n/a: no participant named)"},
            "sessions": {"Description": "sessions exported for this participant"},
        }
    )
    files[Path("dataset_description.json")] = _json(
        {
            "Name": "acudevice study export",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "acudevice", "Version": __version__}],
        }
    )
    files[Path("README")] = (
        b"Acupressure sessions exported by `acudevice study export --format bids`.\n"
        b"Physiological recordings (_physio) of pressure or vibration per band channel, at 4 Hz.\n"
        b"See participants.tsv for the pseudonym behind each subject label.\n"
    )
    staged: list[tuple[Path, Path]] = []
    try:
        for relative, data in files.items():
            final = directory / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(f".{final.name}.partial")
            temp.write_bytes(data)
            staged.append((temp, final))
    except OSError as exc:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise InputError([Problem(str(directory), "", f"cannot write: {exc.strerror}")]) from None
    return commit_files(staged)


def _json(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, indent=1) + "\n").encode()

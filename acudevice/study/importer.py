"""A journal brought back by hand (a laptop, a gateway without network) into the centre.

The journal file is copied first and the copy opened (opening migrates and may mark
sessions interrupted: the original is never written). Its records are built by the same
code as the outbox's (store/outgoing.py), so a session that also arrived through the broker
is stored once; they pass the same checks as the ingester's (registry, withdrawals).
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acudevice.bridge.topics import check_segment
from acudevice.errors import InputError, Problem
from acudevice.store import Journal
from acudevice.study.checks import Parsed, Refused, admit
from acudevice.study.schema import WRITE_LOCK
from acudevice.study.writer import prepare, write

log = logging.getLogger("acudevice.study.ingest")


@dataclass
class Imported:
    sessions: int = 0
    samples_inserted: int = 0
    samples_duplicate: int = 0
    refused: int = 0


def _copy(path: Path, into: Path) -> Path:
    if not path.is_file():
        raise InputError([Problem(str(path), "", "no such journal file")])
    target = into / "journal.sqlite3"
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        with source, sqlite3.connect(target) as copy:
            source.backup(copy)
        source.close()
    except sqlite3.Error as exc:
        raise InputError([Problem(str(path), "", f"not a readable journal: {exc}")]) from None
    return target


async def import_journal(conn: Any, path: Path, gateway: str) -> Imported:
    """Import every session of the journal at `path`, attributing unattributed ones to
    `gateway`; one transaction per session."""
    check_segment(gateway, "--gateway")
    out = Imported()
    await prepare(conn)
    with (
        tempfile.TemporaryDirectory(prefix="acudevice-import-") as tmp,
        Journal(_copy(path, Path(tmp))) as journal,
    ):
        for records in journal.records(gateway):
            owner = getattr(records[0], "gateway", gateway)
            parsed = Parsed(owner, "", [], [(0, 0.0, r) for r in records])
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", WRITE_LOCK)
                known = {r[0] for r in await conn.fetch("SELECT name FROM gateways")}
                gone = {r[0] for r in await conn.fetch("SELECT participant FROM withdrawn")}
                try:
                    admitted = admit(parsed, known, gone)
                except Refused as exc:
                    raise InputError([Problem("--gateway", "", f"{owner!r}: {exc}")]) from None
                written = await write(conn, admitted.records)
            out.sessions += written.sessions
            out.samples_inserted += written.samples_inserted
            out.samples_duplicate += written.samples_offered - written.samples_inserted
            out.refused += admitted.refused
    return out

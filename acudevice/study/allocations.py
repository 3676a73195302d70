"""Enrolment and unblinding on the central store: the arm is sealed, and every look is logged.

`enrol` allocates the next entry of the participant's stratum sequence (plan/allocation.py)
under an advisory lock, and records it in two places: `enrolments` (public: study, stratum,
attributes, timetable) and `acudevice_sealed.allocations` (the arm, the real program, the
label), a schema analysts and the ingester cannot reach (docs/trials.md, "Who may see
what"). The enrolling role reads only the positions there, never the arms: enrolling a
participant again (to deliver their protocol once more) recomputes the arm from the
position and the seed. The protocol is fixed once a study has its first participant: a file
that differs in anything but its title is refused.

`unblind` goes through `acudevice_sealed.unblind()`, a SECURITY DEFINER function that writes
the log row (who: the OS user given and the database role; when; why; whose allocation) in
the same transaction that reads the arms: there is no way to the arms without the log.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import socket
from dataclasses import dataclass
from typing import Any

from acudevice.errors import InputError, NotFoundError, Problem
from acudevice.plan.protocol import Study
from acudevice.plan.timetable import Timetable
from acudevice.store.identity import check_participant
from acudevice.study.schema import SEALED, CentreError

ENROL_LOCK = 0x616375_03
"""Advisory lock key: one enrolment at a time, so two never take the same position."""
MAX_REASON = 1000


def actor() -> str:
    """Who is at the keyboard, for the logs: the OS user (from the process, not from the
    environment, which anyone may set) at this host."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    return f"{user}@{socket.gethostname()}"


def check_reason(reason: str | None, source: str = "--reason") -> str:
    """A reason fit for the unblinding log; InputError (one line) otherwise."""
    if reason is None or not reason.strip():
        raise InputError(
            [Problem(source, "", "unblinding is logged with who, when and why: give the reason")]
        )
    if len(reason) > MAX_REASON:
        raise InputError([Problem(source, "", f"at most {MAX_REASON} characters")])
    if any(ord(c) < 32 or ord(c) == 127 for c in reason):
        raise InputError([Problem(source, "", "one line of text, without control characters")])
    return reason.strip()


@dataclass(frozen=True)
class Enrolment:
    participant: str
    study: str
    stratum: str
    timetable: Timetable
    arm: str
    """Known to the enrolling process, to deliver the program; never printed or stored
    outside the sealed schema."""
    new: bool


async def enrol(
    conn: Any,
    study: Study,
    participant: str,
    attributes: dict[str, str],
    *,
    now: dt.datetime | None = None,
    first_day: dt.date | None = None,
    timezone: str | None = None,
) -> Enrolment:
    check_participant(participant, "ID")
    stratum = study.stratum(attributes)
    now = now or dt.datetime.now(dt.UTC)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ENROL_LOCK)
        if await conn.fetchval("SELECT 1 FROM withdrawn WHERE participant = $1", participant):
            raise CentreError(f"{participant} has withdrawn; a withdrawn pseudonym is not enrolled")
        await _register(conn, study)
        row = await conn.fetchrow(
            "SELECT study, stratum, attributes, timetable FROM enrolments WHERE participant = $1",
            participant,
        )
        if row is not None:
            return await _again(conn, study, participant, attributes, row)
        position = 1 + await conn.fetchval(
            f"SELECT count(*) FROM {SEALED}.allocations WHERE study = $1 AND stratum = $2",
            study.name,
            stratum,
        )
        arm = study.design.arm_at(stratum, position)
        timetable = study.schedule(arm).timetable(now, first_day=first_day, timezone=timezone)
        await conn.execute(
            "INSERT INTO enrolments (participant, study, stratum, attributes, timetable,"
            " enrolled_at, enrolled_by) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7)",
            participant, study.name, stratum, json.dumps(attributes, sort_keys=True),
            timetable.model_dump_json(), now, actor(),
        )  # fmt: skip
        await conn.execute(
            f"INSERT INTO {SEALED}.allocations (participant, study, stratum, position, arm,"
            " program, label, allocated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            participant, study.name, stratum, position, arm, study.programs[arm].name,
            study.arm(arm).label, now,
        )  # fmt: skip
    return Enrolment(participant, study.name, stratum, timetable, arm, new=True)


async def _register(conn: Any, study: Study) -> None:
    digest = study.digest()
    known = await conn.fetchval("SELECT digest FROM studies WHERE name = $1", study.name)
    if known is None:
        await conn.execute("INSERT INTO studies (name, digest) VALUES ($1, $2)", study.name, digest)
    elif known != digest:
        raise CentreError(
            f"{study.path}: study {study.name!r} began with a different protocol; a protocol is "
            "fixed once enrolment begins (an amended protocol is a new study, with a new name)"
        )


async def _again(
    conn: Any, study: Study, participant: str, attributes: dict[str, str], row: Any
) -> Enrolment:
    """An enrolled participant: the same allocation, to be delivered again."""
    if row["study"] != study.name:
        raise CentreError(
            f"{participant} is enrolled in study {row['study']!r}, not {study.name!r}"
        )
    recorded = json.loads(row["attributes"])
    if recorded != attributes:
        shown = " ".join(f"--attribute {k}={v}" for k, v in sorted(recorded.items()))
        raise CentreError(f"{participant} is enrolled with {shown or 'no attributes'}")
    position = await conn.fetchval(
        f"SELECT position FROM {SEALED}.allocations WHERE participant = $1", participant
    )
    arm = study.design.arm_at(row["stratum"], position)
    timetable = Timetable.model_validate_json(row["timetable"])
    return Enrolment(participant, study.name, row["stratum"], timetable, arm, new=False)


@dataclass(frozen=True)
class Allocation:
    participant: str
    study: str
    stratum: str
    arm: str
    program: str
    label: str
    allocated_at: dt.datetime


async def unblind(
    conn: Any, reason: str | None, *, scope: str, participants: list[str] | None = None
) -> list[Allocation]:
    """The allocations of `participants` (None: everyone), logged with `reason` and the
    scope (what the reveal was for: "participant", "report", "export")."""
    why = check_reason(reason, "--reason" if scope == "participant" else "--unblind-reason")
    for participant in participants or []:
        check_participant(participant, "ID")
        if not await conn.fetchval("SELECT 1 FROM enrolments WHERE participant = $1", participant):
            raise NotFoundError(f"{participant} is not enrolled in any study")
    rows = await conn.fetch(
        f"SELECT * FROM {SEALED}.unblind($1, $2, $3, $4)", scope, participants, why, actor()
    )
    return [Allocation(**dict(r)) for r in rows]


async def unblinding_log(conn: Any) -> list[dict[str, Any]]:
    """Every unblinding, oldest first: who, when, why, whose (never the arms)."""
    rows = await conn.fetch(
        f"SELECT id, at, os_user, db_user, scope, participants, reason"
        f" FROM {SEALED}.unblindings ORDER BY id"
    )
    return [dict(r) for r in rows]

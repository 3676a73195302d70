"""`acudevice study protocol / enroll / unblind / unblindings`: running a trial (docs/trials.md).

Registered on the `study` command group by cli/study.py. Nothing here prints an arm or a
real program's name except `unblind`, which logs first, and `protocol`, which describes the
design (the protocol file, not anyone's allocation).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from acudevice.cli.centre_db import Database, with_database
from acudevice.cli.common import err, out, reports_errors
from acudevice.errors import AcuDeviceError, InputError, Problem

StudyFile = Annotated[Path, typer.Option("--study", help="the study protocol file (study.toml)")]


@reports_errors
def protocol(
    study_file: Annotated[Path, typer.Argument(metavar="FILE", help="a study protocol file")],
) -> None:
    """Check a study protocol file (and screen its arms' programs), then summarise it."""
    from acudevice.plan.protocol import label_name, program_seconds
    from acudevice.study.protocols import load_study, screened

    study = load_study(study_file)
    p = study.protocol
    say = [f"{p.name}: {p.title}", f"  {'blinded' if p.blinded else 'open (not blinded)'}"]
    verdicts = screened(study)
    for arm in p.arms:
        program = study.programs[arm.name]
        say.append(
            f"  arm {arm.name} (ratio {arm.ratio}): program {program.name}, "
            f"{program_seconds(program) / 60:.1f} min; participants see {arm.label!r} "
            f"(program {label_name(arm.label)!r}); screening {verdicts[arm.name].status} "
            f"on {verdicts[arm.name].device}"
        )
    a = p.allocation
    strata = "; ".join(f"{k} in {', '.join(v)}" for k, v in a.strata.items()) or "none"
    sizes = ", ".join(str(b) for b in a.block_sizes)
    say.append(f"  allocation: permuted blocks of {sizes}, stratified by: {strata}")
    schedules: dict[Any, list[str]] = {}
    for arm in p.arms:
        schedules.setdefault(study.schedule(arm.name), []).append(arm.name)
    for s, arms in schedules.items():
        windows = ", ".join(f"{w.start}-{w.end}" for w in s.windows)
        whose = "" if len(schedules) == 1 else f" ({', '.join(arms)})"
        say.append(
            f"  schedule{whose}: {len(s.windows)} session(s) a day for {s.days} days, from "
            f"{s.start_after_days} day(s) after enrolment, in {windows} ({s.timezone})"
        )
    r = p.reminders
    say.append(
        "  reminders: none" if r is None
        else f"  reminders: {r.before_min} min before a window, then every {r.every_min} min"
    )  # fmt: skip
    for line in say:
        out.print(line, markup=False)


def _attributes(given: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in given or []:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            raise InputError([Problem("--attribute", "", f"{text!r}: give NAME=VALUE")])
        if name in found:
            raise InputError([Problem("--attribute", name, "given twice")])
        found[name] = value
    return found


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError([Problem("--start", "", f"{text!r} is not a date YYYY-MM-DD")]) from None


@reports_errors
def enroll(
    participant: Annotated[str, typer.Argument(metavar="ID", help="the participant's pseudonym")],
    study_file: StudyFile,
    database: Database,
    broker: Annotated[
        str | None, typer.Option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute", metavar="NAME=VALUE", help="each attribute the study stratifies by"
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="first day of the schedule, YYYY-MM-DD")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="the participant's time zone, if not the study's"),
    ] = None,
    no_deliver: Annotated[
        bool, typer.Option("--no-deliver", help="record the enrolment only; deliver later")
    ] = False,
    prefix: Annotated[str, typer.Option("--prefix")] = "acudevice",
    ca: Annotated[Path | None, typer.Option("--ca", help="CA certificate for mqtts://")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file")] = None,
) -> None:
    """Enrol a participant: allocate an arm (sealed) and deliver their protocol to their
    gateway. Again for an enrolled participant: deliver the same protocol again."""
    from acudevice.bridge.config import read_password
    from acudevice.bridge.mqtt import BrokerAddress, BrokerError, Credentials
    from acudevice.bridge.participant_protocol import for_participant
    from acudevice.bridge.topics import Topics
    from acudevice.plan.timetable import zone
    from acudevice.store.identity import check_participant
    from acudevice.study.allocations import enrol
    from acudevice.study.notices import deliver
    from acudevice.study.protocols import load_study
    from acudevice.study.schema import check_url

    check_participant(participant, "ID")
    check_url(database)
    if timezone is not None:
        try:
            zone(timezone)
        except ValueError as exc:
            raise InputError([Problem("--timezone", "", str(exc))]) from None
    first_day = _date(start)
    attributes = _attributes(attribute)
    address = None
    if not no_deliver:
        if broker is None:
            raise InputError([Problem("--broker", "", "give --broker URL (or --no-deliver)")])
        address = BrokerAddress.parse(broker)
        Topics(prefix, "centre")  # checks the prefix before anything is written
    study = load_study(study_file)
    study.stratum(attributes)  # refused before the database is touched
    done = with_database(
        database,
        lambda conn: enrol(
            conn, study, participant, attributes, first_day=first_day, timezone=timezone
        ),
    )
    t = done.timetable
    what = "enrolled" if done.new else "already enrolled"
    stratum = f" (stratum {done.stratum})" if done.stratum else ""
    out.print(
        f"{participant} {what} in {done.study}{stratum}: {t.days} days from {t.first_day}, "
        f"{len(t.windows)} window(s) a day ({t.timezone})",
        markup=False,
    )
    if address is None:
        out.print(f"{participant}: not delivered (--no-deliver)", markup=False)
        return
    payload = for_participant(study, done.arm, participant, t)
    credentials = Credentials(username, read_password(password_file) if password_file else None)
    try:
        topic = asyncio.run(deliver(address, credentials, prefix, payload, ca_file=ca))
    except BrokerError as exc:
        raise AcuDeviceError(
            f"{participant} is enrolled but the protocol was not delivered ({exc}); "
            "run the same command again to deliver it"
        ) from None
    out.print(f"{participant}: {payload.label!r} delivered on {topic} (retained)", markup=False)


@reports_errors
def unblind(
    participant: Annotated[str, typer.Argument(metavar="ID", help="the participant's pseudonym")],
    database: Database,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why (logged with who and when); required")
    ] = None,
) -> None:
    """Reveal one participant's arm; logged with who, when and why."""
    from acudevice.study.allocations import actor, check_reason
    from acudevice.study.allocations import unblind as reveal
    from acudevice.study.schema import check_url

    why = check_reason(reason)
    check_url(database)
    [found] = with_database(
        database, lambda conn: reveal(conn, why, scope="participant", participants=[participant])
    )
    out.print(
        f"{found.participant}: arm {found.arm} (program {found.program}, label {found.label!r}; "
        f"study {found.study}, allocated {found.allocated_at:%Y-%m-%d %H:%M %Z})",
        markup=False,
    )
    err.print(f"unblinding logged: by {actor()}, reason: {why}", markup=False)


@reports_errors
def unblindings(database: Database) -> None:
    """The unblinding log: who, when, why and whose allocation (never the arms)."""
    from acudevice.study.allocations import unblinding_log

    rows: list[dict[str, Any]] = with_database(database, unblinding_log)
    for r in rows:
        whose = ", ".join(r["participants"]) if r["participants"] is not None else "everyone"
        out.print(
            f"#{r['id']}\t{r['at']:%Y-%m-%d %H:%M:%S %Z}\t{r['os_user']} (role {r['db_user']})"
            f"\t{r['scope']}: {whose}\t{r['reason']}",
            markup=False,
        )
    if not rows:
        err.print("no unblinding so far", markup=False)

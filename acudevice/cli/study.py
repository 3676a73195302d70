"""`acudevice study`: the centre's gateways, export, report and withdrawal (docs/study.md), and
the trial commands of cli/trial.py: protocol, enroll, unblind, unblindings (docs/trials.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from acudevice.cli.centre_db import Database, with_database
from acudevice.cli.common import err, out, reports_errors

app = typer.Typer(
    help="Study centre: protocol, enroll, unblind, export, report, withdraw.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
@reports_errors
def gateways(
    database: Database,
    add: Annotated[
        list[str] | None, typer.Argument(metavar="[NAME...]", help="register these gateways")
    ] = None,
) -> None:
    """Register gateways (records from others are refused), then list them all."""
    from acudevice.study.registry import add_gateways
    from acudevice.study.registry import gateways as listing

    async def work(conn: Any) -> list[tuple[str, Any, Any]]:
        if add:
            await add_gateways(conn, add)
        return await listing(conn)

    for name, registered, last in with_database(database, work):
        seen = "never" if last is None else last.isoformat(timespec="seconds")
        out.print(f"{name}\tregistered {registered:%Y-%m-%d}\tlast batch {seen}", markup=False)


@app.command()
@reports_errors
def export(
    database: Database,
    output: Annotated[Path, typer.Option("--output", "-o", help="directory to write into")],
    fmt: Annotated[Literal["csv", "bids"], typer.Option("--format")] = "csv",
    participant: Annotated[str | None, typer.Option("--participant", help="only this one")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="sessions started since YYYY-MM-DD[THH:MM]")
    ] = None,
    unblind_reason: Annotated[
        str | None,
        typer.Option("--unblind-reason", help="add allocation.csv (the arms); logged with why"),
    ] = None,
) -> None:
    """Write the study as CSV tables, or as a BIDS-style tree of physio recordings."""
    from acudevice.errors import InputError, Problem
    from acudevice.export import parse_since
    from acudevice.study.allocations import check_reason, unblind
    from acudevice.study.bids import export_bids
    from acudevice.study.export import Selection, export_csv

    selection = Selection(participant, parse_since(since) if since else None)
    if unblind_reason is not None:
        check_reason(unblind_reason, "--unblind-reason")
        if fmt != "csv":
            raise InputError(
                [Problem("--unblind-reason", "", "the allocation goes with --format csv")]
            )

    async def work(conn: Any) -> list[Path]:
        if fmt == "bids":
            return await export_bids(conn, output, selection)
        arms = None
        if unblind_reason is not None:
            arms = await unblind(conn, unblind_reason, scope="export")
        return await export_csv(conn, output, selection, arms)

    written = with_database(database, work)
    err.print(f"wrote {len(written)} file(s) into {output}", markup=False)


@app.command()
@reports_errors
def report(
    database: Database,
    output: Annotated[Path, typer.Option("--output", "-o", help="the heatmap PNG")],
    as_json: Annotated[
        bool, typer.Option("--json", help="also print the figures as JSON on stdout")
    ] = False,
    quiet_days: Annotated[
        int,
        typer.Option("--quiet-days", min=1, help="list participants without a session for N days"),
    ] = 2,
    quiet_hours: Annotated[
        float, typer.Option("--quiet-hours", min=0, help="list gateways silent for H hours")
    ] = 24.0,
    unblind_reason: Annotated[
        str | None,
        typer.Option("--unblind-reason", help="show arms and adherence per arm; logged with why"),
    ] = None,
) -> None:
    """Per participant and day: sessions, minutes, "too strong", adherence to the schedule;
    who and what went quiet."""
    from acudevice.study.allocations import check_reason, unblind
    from acudevice.study.heatmap import draw
    from acudevice.study.report import Report, build

    if unblind_reason is not None:
        check_reason(unblind_reason, "--unblind-reason")

    async def work(conn: Any) -> Report:
        arms = None
        if unblind_reason is not None:
            revealed = await unblind(conn, unblind_reason, scope="report")
            arms = {a.participant: a.arm for a in revealed}
        return await build(conn, quiet_days=quiet_days, quiet_hours=quiet_hours, arms=arms)

    figures = with_database(database, work)
    try:
        draw(figures, output)
    except OSError as exc:
        from acudevice.errors import InputError, Problem

        raise InputError([Problem(str(output), "", f"cannot write: {exc.strerror}")]) from None
    if as_json:
        out.print(figures.to_json(), end="", markup=False, highlight=False)
    err.print(f"report written to {output}", markup=False)


@app.command()
@reports_errors
def withdraw(
    participant: Annotated[str, typer.Argument(metavar="ID", help="the participant's pseudonym")],
    database: Database,
    broker: Annotated[str, typer.Option("--broker", help="mqtt://HOST:PORT or mqtts://...")],
    prefix: Annotated[str, typer.Option("--prefix")] = "acudevice",
    ca: Annotated[Path | None, typer.Option("--ca", help="CA certificate for mqtts://")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file")] = None,
) -> None:
    """Delete a participant's data centrally and tell every gateway (retained) to do the same."""
    from acudevice.bridge.config import read_password
    from acudevice.bridge.mqtt import BrokerAddress, Credentials
    from acudevice.store.identity import check_participant
    from acudevice.study.registry import withdraw as withdraw_centrally
    from acudevice.study.withdrawal import announce

    check_participant(participant, "ID")
    address = BrokerAddress.parse(broker)
    credentials = Credentials(username, read_password(password_file) if password_file else None)
    done = with_database(database, lambda conn: withdraw_centrally(conn, participant))
    topic = asyncio.run(announce(address, credentials, prefix, participant, ca_file=ca))
    out.print(
        f"{participant}: {done.sessions} session(s) and {done.samples} sample(s) deleted "
        f"centrally; gateways told on {topic} (retained)",
        markup=False,
    )


from acudevice.cli import trial  # noqa: E402 - the trial commands join this group

app.command("protocol")(trial.protocol)
app.command("enroll")(trial.enroll)
app.command("unblind")(trial.unblind)
app.command("unblindings")(trial.unblindings)

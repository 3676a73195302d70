"""`acudevice study`: the centre's gateways, export, report and withdrawal (docs/study.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from acudevice.cli.common import err, out, reports_errors

app = typer.Typer(
    help="Study centre: gateways, export, report, withdraw a participant.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
Database = Annotated[str, typer.Option("--database", help="postgresql://USER@HOST:PORT/DB")]
T = TypeVar("T")


def _with_database(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, migrate, run `work(conn)`, close."""
    import asyncpg

    from acudevice.study.schema import CentreError, check_url, connect, migrate

    check_url(url)

    async def main() -> T:
        conn = await connect(url)
        try:
            await migrate(conn)
            return await work(conn)
        except asyncpg.PostgresError as exc:  # e.g. a role without the right (docs/study.md)
            raise CentreError(f"the study database refused: {exc}") from None
        finally:
            await conn.close()

    return asyncio.run(main())


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

    for name, registered, last in _with_database(database, work):
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
) -> None:
    """Write the study as CSV tables, or as a BIDS-style tree of physio recordings."""
    from acudevice.export import parse_since
    from acudevice.study.bids import export_bids
    from acudevice.study.export import Selection, export_csv

    selection = Selection(participant, parse_since(since) if since else None)
    writer = export_csv if fmt == "csv" else export_bids
    written = _with_database(database, lambda conn: writer(conn, output, selection))
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
) -> None:
    """Per participant and day: sessions, minutes, "too strong"; who and what went quiet."""
    from acudevice.study.report import build, draw

    figures = _with_database(
        database, lambda conn: build(conn, quiet_days=quiet_days, quiet_hours=quiet_hours)
    )
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
    done = _with_database(database, lambda conn: withdraw_centrally(conn, participant))
    topic = asyncio.run(announce(address, credentials, prefix, participant, ca_file=ca))
    out.print(
        f"{participant}: {done.sessions} session(s) and {done.samples} sample(s) deleted "
        f"centrally; gateways told on {topic} (retained)",
        markup=False,
    )

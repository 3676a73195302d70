"""`acudevice ingest`: the study centre's ingester, or a journal brought back by hand."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from acudevice.cli.common import err, out, reports_errors
from acudevice.errors import InputError, Problem

if TYPE_CHECKING:  # the ingester (asyncpg, aiomqtt) loads only when the command runs
    from acudevice.bridge.mqtt import BrokerAddress, MqttClient
    from acudevice.study.ingest import Ingester


@reports_errors
def ingest(
    database: Annotated[
        str, typer.Option("--database", help="postgresql://USER@HOST:PORT/DB (the study store)")
    ],
    broker: Annotated[
        str | None, typer.Option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    ] = None,
    journal: Annotated[
        Path | None, typer.Option("--journal", help="import this journal file instead")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="with --journal: the gateway it came from")
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="topic prefix")] = "acudevice",
    group: Annotated[
        str, typer.Option("--group", help="shared-subscription group of the ingesters")
    ] = "acudevice-ingest",
    ca: Annotated[Path | None, typer.Option("--ca", help="CA certificate for mqtts://")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="file whose first line is the password")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Store every gateway's records in PostgreSQL, confirming each batch after the commit."""
    from acudevice.study.schema import check_url

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    check_url(database)
    if journal is not None:
        if gateway is None:
            raise InputError([Problem("--gateway", "", "--journal needs --gateway NAME")])
        asyncio.run(_import(database, journal, gateway))
        return
    if broker is None:
        raise InputError([Problem("--broker", "", "give --broker URL (or --journal FILE)")])
    from acudevice.bridge.config import read_password
    from acudevice.bridge.mqtt import BrokerAddress, Credentials, MqttClient
    from acudevice.bridge.topics import check_segment
    from acudevice.study.ingest import Ingester, client_id

    for i, level in enumerate(prefix.split("/")):
        check_segment(level, f"--prefix (level {i + 1})")
    check_segment(group, "--group")
    address = BrokerAddress.parse(broker)
    client = MqttClient(
        address,
        client_id=client_id(),
        credentials=Credentials(username, read_password(password_file) if password_file else None),
        ca_file=ca,
    )
    ingester = Ingester(database, prefix=prefix, group=group)
    try:
        asyncio.run(_serve(ingester, client, address))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    err.print("ingest stopped")


async def _serve(ingester: Ingester, client: MqttClient, address: BrokerAddress) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)
    runner = asyncio.create_task(ingester.run(client))
    subscribed = asyncio.create_task(ingester.subscribed.wait())
    await asyncio.wait([runner, subscribed], return_when=asyncio.FIRST_COMPLETED)
    if subscribed.done():
        err.print(f"ingesting {ingester.subscription} from {address} into the study database")
    else:
        subscribed.cancel()
    try:
        await runner
    except asyncio.CancelledError:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def _import(database: str, journal: Path, gateway: str) -> None:
    import asyncpg

    from acudevice.study.importer import import_journal
    from acudevice.study.schema import CentreError, connect, migrate

    conn = await connect(database)
    try:
        await migrate(conn)
        done = await import_journal(conn, journal, gateway)
    except asyncpg.PostgresError as exc:
        raise CentreError(f"the study database refused: {exc}") from None
    finally:
        await conn.close()
    out.print(
        f"{journal}: {done.sessions} session(s); {done.samples_inserted} new sample(s), "
        f"{done.samples_duplicate} already there; {done.refused} record(s) refused",
        markup=False,
    )

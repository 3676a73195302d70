"""What every command of the study centre shares: its database, connected and migrated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

Database = Annotated[str, typer.Option("--database", help="postgresql://USER@HOST:PORT/DB")]
T = TypeVar("T")


def with_database(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
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

"""Whether an exception means the database cannot be reached (R54), as opposed to a bug.

An outage is answered with 503 and Retry-After (web/outage.py): the client may try again
and nothing about the request was wrong. Everything else stays an unexpected error."""

import asyncpg
from sqlalchemy import exc as sa

# PostgreSQL refusing work while it shuts down, restarts or is full: class 08 (connection
# exception), 57P01..57P03 (shutdown, crash, not accepting connections yet), 53300.
_SERVER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
)
# Errors of files, not of the network: a missing key file is a configuration bug, not an outage.
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
MESSAGE = "The service is temporarily unavailable. Try again later."  # what clients are told, in every shape
_MAX_CHAIN = 16  # causes followed; chains are short, the bound only guards against cycles


class DatabaseUnavailable(Exception):
    """Raised by the HTTP layer when a GraphQL result holds an outage error, so that the whole
    request is answered as one (web/outage.py)."""


def _is_outage_itself(error: BaseException) -> bool:
    if isinstance(error, DatabaseUnavailable | sa.TimeoutError):  # sa.TimeoutError: no pooled connection in time
        return True
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, _SERVER_UNAVAILABLE):
        return True
    # The command timeout (asyncio) and the socket: refused, reset, unreachable, timed out.
    if isinstance(error, TimeoutError):
        return True
    return isinstance(error, OSError) and not isinstance(error, _FILE_ERRORS)


def is_outage(error: BaseException) -> bool:
    """True when `error`, what caused it, or a member of its exception group is an outage.
    SQLAlchemy wraps the driver's errors (`__cause__`, `.orig`), so the chain is followed."""
    seen: set[int] = set()
    pending = [error]
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_outage_itself(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        orig = getattr(current, "orig", None)
        pending.extend(e for e in (current.__cause__, current.__context__, orig) if isinstance(e, BaseException))
    return False

"""Which exceptions are a database outage (R54, models/outage.py): the driver's and the pool's
connection failures are; a bug, a constraint, a missing file or a busy SQLite are not."""

import asyncpg
import pytest
from sqlalchemy import exc as sa

from models.outage import DatabaseUnavailable, is_outage


def _wrapped(orig: BaseException, *, invalidated: bool = False, kind: type[sa.DBAPIError] = sa.OperationalError
             ) -> sa.DBAPIError:
    """As SQLAlchemy raises a driver error: wrapped, with the original as `.orig` and the cause."""
    try:
        raise kind("SELECT 1", None, orig, connection_invalidated=invalidated) from orig
    except sa.DBAPIError as error:
        return error


OUTAGES = {
    "refused": ConnectionRefusedError(111, "Connect call failed"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "several addresses": OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."),
    "unreachable": OSError(113, "No route to host"),
    "connect or command timeout": TimeoutError(),
    "pool timeout": sa.TimeoutError("QueuePool limit of size 10 overflow 20 reached"),
    "closed mid-operation": asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    "shutting down": asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    "starting up": asyncpg.CannotConnectNowError("the database system is starting up"),
    "crash": asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
    "too many connections": asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    "invalidated (SQLAlchemy)": _wrapped(Exception("connection was closed"), invalidated=True, kind=sa.DBAPIError),
    "interface error, invalidated": _wrapped(Exception("connection is closed"), invalidated=True,
                                             kind=sa.InterfaceError),
    "wrapped refusal": _wrapped(ConnectionRefusedError(111, "refused")),
    "wrapped shutdown": _wrapped(asyncpg.AdminShutdownError("terminating")),
    "our own marker": DatabaseUnavailable(),
    "in a group": ExceptionGroup("task group", [ValueError("other"), ConnectionResetError()]),
}

NOT_OUTAGES = {
    "a bug": ValueError("bad"),
    "a key error": KeyError("x"),
    "a missing key file": FileNotFoundError(2, "No such file", "/etc/bureau/key.json"),
    "a permission": PermissionError(13, "Permission denied"),
    "a constraint": _wrapped(asyncpg.UniqueViolationError("duplicate key"), kind=sa.IntegrityError),
    "sqlite busy": _wrapped(Exception("database is locked")),
    "not invalidated interface error": _wrapped(Exception("another operation is in progress"),
                                                kind=sa.InterfaceError),
    "a statement error": asyncpg.UndefinedTableError('relation "x" does not exist'),
    "a group of bugs": ExceptionGroup("task group", [ValueError("a"), TypeError("b")]),
}


@pytest.mark.parametrize("error", OUTAGES.values(), ids=OUTAGES.keys())
def test_outages(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize("error", NOT_OUTAGES.values(), ids=NOT_OUTAGES.keys())
def test_not_outages(error: BaseException) -> None:
    assert not is_outage(error)


def test_an_error_raised_because_of_an_outage_is_one() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as refused:
            raise RuntimeError("could not load the grants") from refused
    except RuntimeError as error:
        assert is_outage(error)


def test_a_cycle_of_causes_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert not is_outage(first)

"""The global IDs and cursors PostgreSQL writes in a compiled read (compiled.sql, R116) are those
models.ids and schema.types.common write, for every type the compiler reads and any row id."""

import base64
import itertools

import pytest
from sqlalchemy import BigInteger, Integer, column, func, select, values

from compiled.compiler import TABLES
from compiled.sql import DIGITS, cursor, global_id, url_safe_as_is
from models import ids
from models.db import Database
from schema.types.common import encode_cursor

# Every length of id up to the largest bigint, at each end of its length, and a run of small ones.
PKS = sorted({*range(1, 1200), *(10**n for n in range(19)), *(10**n - 1 for n in range(1, 19)), 2**63 - 1,
              123456789012345678, 987654321098765432})


def test_digits_alone_never_encode_to_plus_or_slash() -> None:
    """What url_safe_as_is rests on: every chunk of one to three digits, the last one padded."""
    for count in (1, 2, 3):
        for digits in itertools.product(DIGITS, repeat=count):
            encoded = base64.b64encode("".join(digits).encode())
            assert b"+" not in encoded and b"/" not in encoded, digits


@pytest.mark.parametrize(("type_name", "as_is"), [
    ("Company", True), ("Membership", True), ("User", True), ("LicenseSubscription", True),
    ("ab>", False),  # the chunk "ab>" ends in 62: "+"
    ("ab?", False),  # and "ab?" in 63: "/"
])
def test_an_id_is_left_untranslated_only_when_no_row_id_can_need_it(type_name: str, as_is: bool) -> None:
    assert url_safe_as_is(f"{type_name}:") is as_is
    assert ("translate" not in str(global_id(type_name, column("id", Integer)).compile())) is as_is


async def _written(database: Database, expression_of: object) -> list[str]:
    rows = values(column("id", BigInteger), name="pks").data([(pk,) for pk in PKS])
    pk = rows.c.id
    statement = select(func.array_agg(expression_of(pk)))  # type: ignore[operator]
    async with database.engine.connect() as connection:
        return list(await connection.scalar(statement.select_from(rows)))


@pytest.mark.parametrize("type_name", [*TABLES, "SeatPool"])
async def test_a_global_id_is_the_one_models_ids_writes(database: Database, type_name: str) -> None:
    written = await _written(database, lambda pk: global_id(type_name, pk))
    assert written == [ids.encode(type_name, pk) for pk in PKS]


async def test_a_cursor_is_the_one_the_resolvers_write(database: Database) -> None:
    assert await _written(database, cursor) == [encode_cursor(pk) for pk in PKS]


async def test_a_prefix_that_needs_translating_is_translated(database: Database) -> None:
    written = await _written(database, lambda pk: global_id("ab>", pk))
    assert written == [base64.urlsafe_b64encode(f"ab>:{pk}".encode()).decode().rstrip("=") for pk in PKS]
    assert all("-" in w for w in written)

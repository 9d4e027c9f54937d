"""Several independent row lists in one statement (issue 13: statements per mutation).

Each SELECT of one entity becomes a subquery, and the subqueries are joined on nothing
(FULL JOIN ... ON false): every row of the result holds one subquery's row and NULLs for the
others. What comes back is the same objects, in the session's identity map, as the separate
SELECTs would give, for one round trip instead of one each. PostgreSQL and SQLite (3.39+)
both join so."""

from typing import Any

from sqlalchemy import Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased


async def side_by_side(session: AsyncSession, *statements: Select[Any]) -> list[list[Any]]:
    """The rows of each statement (each selecting one mapped class), in the order given."""
    entities: list[Any] = []
    for statement in statements:
        model = statement.column_descriptions[0]["entity"]
        entities.append(aliased(model, statement.subquery(), flat=True))
    joined = select(*entities).select_from(entities[0])
    for entity in entities[1:]:
        joined = joined.join(entity, false(), full=True)
    lists: list[list[Any]] = [[] for _ in statements]
    for row in (await session.execute(joined)).all():
        for kept, value in zip(lists, row, strict=True):
            if value is not None:
                kept.append(value)
    return lists

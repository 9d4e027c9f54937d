"""The delivery loop both outboxes share: email (R20, `resolvers.outbox`) and webhooks (R70,
`resolvers.webhook_delivery`). Each supplies its table, what "due" means and how to send one row;
this module claims the rows, counts the attempts, backs off and keeps the worker running.

Claiming: candidates are read `batch_size` ids at a time, in id order; each one is then claimed
with `SELECT ... FOR UPDATE SKIP LOCKED` in its own transaction, which stays open while the row is
sent and commits its outcome right after. A concurrent worker skips the locked row and, once
committed, no longer sees it as due. SQLite has no SKIP LOCKED; there the worker is a single
process and a plain select is enough.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import Database

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


class Retried(Protocol):
    """The columns every outbox row has for its retries."""

    id: Any
    attempts: Any
    next_attempt_at: Any
    last_error: Any


R = TypeVar("R", bound=Retried)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0


def backoff(attempts: int) -> timedelta:
    """Delay after the `attempts`-th failure: 30s, 60s, 120s, ... capped at one hour, plus up to 10% jitter."""
    exponent = min(max(attempts - 1, 0), 16)
    delay = min(BACKOFF_BASE * (2 ** exponent), BACKOFF_CAP)
    return delay + delay * (random.random() / 10)


def record_failure(row: Retried, now: datetime, error: str) -> None:
    """One more failed attempt: the row is due again after `backoff(attempts)`."""
    row.attempts = (row.attempts or 0) + 1
    row.last_error = error
    row.next_attempt_at = now + backoff(row.attempts)


async def deliver_due_rows(
    database: Database,
    model: type[R],
    due: Callable[[datetime], ColumnElement[bool]],
    now: datetime,
    send: Callable[[AsyncSession, R], Awaitable[bool | None]],
    *,
    batch_size: int = 100,
) -> DeliveryReport:
    """One pass over every row of `model` that is `due(now)`. `send(session, row)` runs in the
    row's claiming transaction and answers True (sent), False (failed: it called
    `record_failure` or the like, so the row is no longer due in this pass) or None (nothing
    to count); whatever it changed on the row commits with the claim."""
    if now.tzinfo is None:
        raise ValueError("a delivery pass needs an aware datetime")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    table: Any = model
    report = DeliveryReport()
    after = 0
    while True:
        async with database.sessions() as session:
            ids = list(await session.scalars(
                select(table.id).where(due(now), table.id > after).order_by(table.id).limit(batch_size)))
        if not ids:
            return report
        for row_id in ids:
            query = select(table).where(table.id == row_id, due(now))
            if not database.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            async with database.sessions.begin() as session:
                row = await session.scalar(query)
                if row is None:  # another worker has it, or it is no longer due
                    continue
                outcome = await send(session, row)
            if outcome is True:
                report.sent += 1
            elif outcome is False:
                report.failed += 1
        after = ids[-1]


async def run_periodically(
    one_pass: Callable[[datetime], Awaitable[object]],
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    interval: float,
    log: logging.Logger,
) -> None:
    """Runs `one_pass(clock())` every `interval` seconds until `stop` is set. A pass that fails
    (say, the database is briefly unavailable) is logged and the loop goes on: the rows stay queued."""
    while not stop.is_set():
        try:
            await one_pass(clock())
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the worker must outlive a failed pass; the rows stay queued
            log.exception("delivery pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass

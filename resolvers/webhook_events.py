"""Webhook events are written in the transaction of the change that makes them (R68).

The hook point is the session factory's `before_commit` (`install`, called by resolvers.runtime
beside live.publish): when a transaction that added audit rows commits, the rows of firms with
enabled endpoints become `WebhookEvent`s (licensing.webhooks says which) and one `WebhookDelivery`
per endpoint that wants each, so they commit, or roll back, with the change. A firm without
endpoints costs one SELECT per committed transaction that wrote audit rows. Seat usage: the
subscriptions whose seats a change may have moved are what its writer said (`affects`, read
through live.publish.affected_subscriptions), the same ones live subscriptions hear of.

Every event has a unique key (`evt_...`) and a sequence number per subject, given in commit
order: the subject's `webhook_sequences` row is locked by the upsert until the commit.
"""

import json
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Select, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from licensing.webhooks import EventType, decode_types, event_type_of
from live.publish import affected_subscriptions
from models import AuditEvent, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSequence
from models import ids as global_ids
from models.db import add_hooks

_ADDED = "bureau.webhooks.added"  # session.info: audit rows flushed in the transaction
_ENDPOINTS = "bureau.webhooks.endpoints"  # session.info: firm id -> its enabled endpoints, as the transaction read them


def endpoints_of(firm_id: int) -> "Select[WebhookEndpoint]":
    """A firm's enabled endpoints, for a writer to read beside its own rows (models.side_by_side) and
    hand to `note_endpoints`: the commit then need not read them again (R94)."""
    return select(WebhookEndpoint).where(WebhookEndpoint.firm_id == firm_id, WebhookEndpoint.enabled.is_(True))


def note_endpoints(session: Session, firm_id: int, endpoints: list[WebhookEndpoint]) -> None:
    """`endpoints_of(firm_id)` as this transaction read it. Read at the commit instead, an endpoint
    registered meanwhile would be missed all the same (READ COMMITTED: only what committed before)."""
    session.info.setdefault(_ENDPOINTS, {})[firm_id] = sorted(
        ((endpoint.id, endpoint.event_types) for endpoint in endpoints), key=lambda pair: pair[0])


def _collect(session: Session, flush_context: object) -> None:
    added = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if added:
        session.info.setdefault(_ADDED, []).extend(added)


def _forget(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the outer transaction's rows still count
        return
    session.info.pop(_ADDED, None)
    session.info.pop(_ENDPOINTS, None)


def install(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Audit rows committed through these sessions make the webhook events of their firms."""
    add_hooks(sessions, {"after_flush": _collect, "after_rollback": _forget})
    # First of the before_commit hooks, so that those after it (the data versions of R82, live
    # events) see the rows it writes.
    add_hooks(sessions, {"before_commit": _enqueue}, first=True)


def _enqueue(session: Session) -> None:
    if any(isinstance(obj, AuditEvent) for obj in session.new):
        session.flush()  # the commit would flush next anyway; the rows need their ids now
    added: list[AuditEvent] = session.info.pop(_ADDED, [])
    noted: dict[int, list[tuple[int, str]]] = session.info.pop(_ENDPOINTS, {})
    rows = sorted((row for row in added if inspect(row).persistent and row.firm_id is not None), key=lambda r: r.id)
    if rows:
        write_events(session, rows, noted)


def write_events(session: Session, rows: list[AuditEvent],
                 noted: dict[int, list[tuple[int, str]]] | None = None) -> None:
    """The events and deliveries of these committed-to-be audit rows. `noted`: firms' endpoints the
    transaction read already (`note_endpoints`); the other firms' are read here."""
    noted = noted or {}
    firms = sorted({row.firm_id for row in rows if row.firm_id is not None})
    wants: dict[int, list[tuple[int, set[EventType]]]] = defaultdict(list)
    for firm_id in firms:
        for endpoint_id, types in noted.get(firm_id, []):
            wants[firm_id].append((endpoint_id, set(decode_types(types))))
    if unread := [firm_id for firm_id in firms if firm_id not in noted]:
        for endpoint_id, firm_id, types in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.firm_id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.firm_id.in_(unread), WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)
        ).all():
            wants[firm_id].append((endpoint_id, set(decode_types(types))))
    if not wants:
        return
    wanted = {firm_id: set().union(*(types for _, types in endpoints)) for firm_id, endpoints in wants.items()}
    seat_rows = [row for row in rows if EventType.SEAT_USAGE_CHANGED in wanted.get(row.firm_id or 0, set())]
    moved = affected_subscriptions(session, seat_rows) if seat_rows else {}
    planned: list[tuple[AuditEvent, EventType, str, dict[str, Any]]] = []
    announced: set[int] = set()  # one SEAT_USAGE_CHANGED per subscription and transaction
    for row in rows:
        firm_wants = wanted.get(row.firm_id or 0, set())
        kind = event_type_of(row.action)
        if kind is not None and kind in firm_wants:
            planned.append((row, kind, row.subject_id or global_ids.encode("Firm", row.firm_id or 0), {
                "before": _loads(row.before), "after": _loads(row.after)}))
        for subscription_id in sorted(moved.get(row, set())):
            if subscription_id in announced:
                continue
            announced.add(subscription_id)
            subject = global_ids.encode("LicenseSubscription", subscription_id)
            planned.append((row, EventType.SEAT_USAGE_CHANGED, subject, {"subscription": subject}))
    if not planned:
        return
    sequences = _allocate(session, [subject for _, _, subject, _ in planned])
    made: list[tuple[WebhookEvent, AuditEvent, EventType]] = []
    for row, kind, subject, data in planned:
        sequence = sequences[subject].pop(0)
        key = "evt_" + uuid.uuid4().hex
        body = {
            "id": key, "type": kind.value, "sequence": sequence, "subject": subject,
            "firm": global_ids.encode("Firm", row.firm_id or 0), "occurredAt": row.occurred_at.isoformat(),
            "data": {"action": row.action, "summary": row.summary,
                     "auditEvent": global_ids.encode("AuditEvent", row.id), **data},
        }
        webhook_event = WebhookEvent(firm_id=row.firm_id, event_key=key, event_type=kind.name, subject_id=subject,
                                     sequence=sequence, occurred_at=row.occurred_at,
                                     body=json.dumps(body, separators=(",", ":"), sort_keys=True, default=str))
        session.add(webhook_event)
        made.append((webhook_event, row, kind))
    session.flush()
    for webhook_event, row, kind in made:
        for endpoint_id, wanted_types in wants.get(row.firm_id or 0, []):
            if kind in wanted_types:
                session.add(WebhookDelivery(firm_id=row.firm_id, endpoint_id=endpoint_id, event_id=webhook_event.id,
                                            created_at=row.occurred_at, attempts=0))


def _allocate(session: Session, subjects: list[str]) -> dict[str, list[int]]:
    """The next sequence numbers of each subject, as many as asked, in one upsert (its rows in
    sorted order, so that two transactions lock the subjects they share in the same order)."""
    wanted: dict[str, int] = defaultdict(int)
    for subject in subjects:
        wanted[subject] += 1
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(WebhookSequence).values([{"subject_id": subject, "last": wanted[subject]}
                                                for subject in sorted(wanted)])
    rows = session.execute(statement.on_conflict_do_update(
        index_elements=["subject_id"], set_={"last": WebhookSequence.last + statement.excluded.last},
    ).returning(WebhookSequence.subject_id, WebhookSequence.last)).all()
    return {subject: list(range(last - wanted[subject] + 1, last + 1)) for subject, last in rows}


def _loads(values: str | None) -> Any:
    return None if values is None else json.loads(values)

"""Publishing: every committed audit row is announced to the live subscriptions of every instance.

The hooks are registered on a runtime's session factory (`install`, called by resolvers.runtime),
so every writer of audit rows through it (mutations, the period change, accepting an invitation,
the CLI) announces them: when a transaction that added audit rows commits, its events go out with
`pg_notify` in that same transaction, which PostgreSQL delivers only when (and if) the transaction
commits. SQLite has no LISTEN/NOTIFY: there the events go to this process's hub after the commit,
so that a single embedded server still works.

An event names the audit row, its firm, company and subscription, and `subscription_ids`: the
subscriptions whose seat usage the change may have moved. The writer says which (`affects`, given
to `UnitOfWork.audit` and kept in the session's info by `record_affects`): a subscription, an
agreement (its subscription), a company (its agreement's) or a firm (its master licence, whose
CLIENT_USER pool counts the firm's client users). Nothing is guessed from the row's contents.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

from sqlalchemy import func, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from live.hub import CHANNEL, Event, hub_for
from models import Agreement, AuditEvent, Company, Firm, LicenseSession, Membership, Subscription
from models.db import add_hooks

MAX_PAYLOAD = 7000  # NOTIFY payloads must stay under 8000 bytes

# What a change may move the seat usage of: see `_affected`.
Seats: TypeAlias = Subscription | Agreement | Company | Firm | Membership | LicenseSession
Affected = tuple[str, int]  # ("subscription" | "agreement" | "company" | "firm", primary key)

# session.info keys. AFFECTS is the writers' word, readable by any other hook before the commit.
AFFECTS = "bureau.live.affects"  # {audit row: frozenset of Affected}
_ADDED = "bureau.live.added"  # audit rows flushed in the transaction
_LOCAL = "bureau.live.local"  # events to hand to the hub after the commit (SQLite)


# ------------------------------------------------------------------ what a change affects


def _affected(target: Seats) -> Affected:
    """The subscription itself; an agreement's subscription; a company's or a membership's agreement's
    (as it is at the commit: a move names both agreements); a session's subscription; a firm's master
    licence (whose CLIENT_USER pool counts the firm's client users)."""
    if isinstance(target, Subscription):
        kind, pk = "subscription", target.id
    elif isinstance(target, Agreement):
        kind, pk = "agreement", target.id
    elif isinstance(target, Company):
        kind, pk = "company", target.id
    elif isinstance(target, Membership):
        kind, pk = "company", target.company_id
    elif isinstance(target, LicenseSession):
        kind, pk = "subscription", target.subscription_id
    elif isinstance(target, Firm):
        kind, pk = "firm", target.id
    else:
        raise TypeError(f"{type(target).__name__} has no seats")
    if pk is None:
        raise ValueError(f"{type(target).__name__} is not flushed yet: it has no id to announce")
    return kind, pk


def record_affects(session: Session, row: AuditEvent, targets: Iterable[Seats]) -> None:
    """Keeps, until the commit, whose seat usage the change `row` records may have moved."""
    affected = frozenset(_affected(target) for target in targets)
    recorded: dict[AuditEvent, frozenset[Affected]] = session.info.setdefault(AFFECTS, {})
    recorded[row] = recorded.get(row, frozenset()) | affected


def recorded_affects(session: Session) -> Mapping[AuditEvent, frozenset[Affected]]:
    """What the writers of this transaction's audit rows said they affected (rows without a word: nothing)."""
    recorded: dict[AuditEvent, frozenset[Affected]] = session.info.get(AFFECTS, {})
    return recorded


def affected_subscriptions(session: Session, rows: Iterable[AuditEvent]) -> dict[AuditEvent, set[int]]:
    """The subscriptions (IDs) whose seat usage each row's change may have moved: two statements at most."""
    recorded = recorded_affects(session)
    wanted = {row: recorded.get(row, frozenset()) for row in rows}

    def named(kind: str) -> list[int]:
        return sorted({pk for affected in wanted.values() for k, pk in affected if k == kind})

    agreement_of: dict[int, int] = {}
    if companies := named("company"):
        agreement_of = {pk: agreement for pk, agreement in session.execute(
            select(Company.id, Company.agreement_id).where(Company.id.in_(companies))).all()}
    agreements, firms = sorted(set(named("agreement")) | set(agreement_of.values())), named("firm")
    of_agreement: dict[int, int] = {}
    master_of: dict[int, int] = {}
    if agreements or firms:
        for pk, agreement, master_firm in session.execute(
            select(Subscription.id, Subscription.agreement_id, Subscription.master_firm_id).where(or_(
                Subscription.agreement_id.in_(agreements), Subscription.master_firm_id.in_(firms)))
        ).all():
            if agreement is not None:
                of_agreement[agreement] = pk
            if master_firm is not None:
                master_of[master_firm] = pk
    result: dict[AuditEvent, set[int]] = {}
    for row, affected in wanted.items():
        ids: set[int | None] = set()
        for kind, pk in affected:
            if kind == "subscription":
                ids.add(pk)
            elif kind == "firm":
                ids.add(master_of.get(pk))
            else:
                ids.add(of_agreement.get(agreement_of.get(pk, -1) if kind == "company" else pk))
        result[row] = {pk for pk in ids if pk is not None}
    return result


# ------------------------------------------------------------------ the events


def _events(session: Session, rows: list[AuditEvent]) -> list[Event]:
    affected = affected_subscriptions(session, rows)
    return [{"kind": "audit", "audit_event_id": row.id, "firm_id": row.firm_id, "company_id": row.company_id,
             "subscription_id": row.subscription_id, "subscription_ids": sorted(affected[row])} for row in rows]


def payloads(events: list[Event]) -> Iterator[str]:
    """NOTIFY payloads of at most MAX_PAYLOAD bytes, each a JSON list of events."""
    chunk: list[str] = []
    size = 2
    for item in events:
        encoded = json.dumps(item, separators=(",", ":"))
        if chunk and size + len(encoded) + 1 > MAX_PAYLOAD:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 2
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        yield "[" + ",".join(chunk) + "]"


# ------------------------------------------------------------------ the session hooks


def _collect(session: Session, flush_context: object) -> None:
    added = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if added:
        session.info.setdefault(_ADDED, []).extend(added)


def _announce(session: Session) -> None:
    if any(isinstance(obj, AuditEvent) for obj in session.new):
        session.flush()  # the commit would flush next anyway; the rows need their ids now
    added: list[AuditEvent] = session.info.pop(_ADDED, [])
    rows = [row for row in added if inspect(row).persistent]  # not those of a rolled-back savepoint
    if not rows:
        return
    events = _events(session, rows)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        for payload in payloads(events):
            connection.execute(select(func.pg_notify(CHANNEL, payload)))
    else:
        session.info[_LOCAL] = (connection.engine, events)


def _committed(session: Session) -> None:
    session.info.pop(AFFECTS, None)  # kept to here: other hooks may read it before the commit
    local = session.info.pop(_LOCAL, None)
    if local is not None:
        engine, events = local
        hub_for(engine).publish(events)


def _forget(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the outer transaction's rows still count
        return
    for key in (_ADDED, AFFECTS, _LOCAL):
        session.info.pop(key, None)


def install(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Audit rows committed through these sessions are announced to every instance's subscribers."""
    add_hooks(sessions, {"after_flush": _collect, "before_commit": _announce, "after_commit": _committed,
                         "after_rollback": _forget})

"""Idempotency keys (R27): a mutation given a key that the same client and user already
used returns the first result and does nothing again; the same key with another input is
refused. The record is written in the mutation's own transaction, so it exists exactly
when the effect does; two requests racing with one key collide on the unique constraint,
the loser retries and then finds the winner's record.

The first result is stored as references to the rows it returned and read back fresh."""

import dataclasses
import enum
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from licensing.errors import RuleViolation
from models import Base, IdempotencyRecord
from models.enums import UserErrorCode
from resolvers.base import UnitOfWork

MODELS = {mapper.class_.__name__: mapper.class_ for mapper in Base.registry.mappers}


@dataclasses.dataclass(frozen=True)
class IdempotencyKey:
    key: str
    mutation: str
    input: Any


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "idempotency_key"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date | datetime | Decimal):
        return str(value)
    return value


def request_hash(mutation: str, input: Any) -> str:
    canonical = json.dumps({"mutation": mutation, "input": _plain(input)}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _dump(value: Any) -> Any:
    if isinstance(value, Base):
        return {"$model": type(value).__name__, "id": value.id}  # type: ignore[attr-defined]
    if isinstance(value, tuple):
        return {"$tuple": [_dump(v) for v in value]}
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


async def _load(uow: UnitOfWork, value: Any) -> Any:
    if isinstance(value, dict) and "$model" in value:
        return await uow.session.get(MODELS[value["$model"]], value["id"])
    if isinstance(value, dict) and "$tuple" in value:
        return tuple([await _load(uow, v) for v in value["$tuple"]])
    if isinstance(value, list):
        return [await _load(uow, v) for v in value]
    return value


def principal_key(uow: UnitOfWork) -> str:
    return f"{uow.principal.client_id}|{uow.principal.user_id or ''}"


async def replay(uow: UnitOfWork, idem: IdempotencyKey) -> tuple[bool, Any]:
    """(True, first result) when the key was used before with the same input."""
    record = await uow.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal_key == principal_key(uow), IdempotencyRecord.key == idem.key
        )
    )
    if record is None:
        return False, None
    if record.request_hash != request_hash(idem.mutation, idem.input):
        raise RuleViolation(UserErrorCode.IDEMPOTENCY_KEY_REUSED,
                            "This idempotency key was used with a different request.", ["input", "idempotencyKey"])
    return True, await _load(uow, json.loads(record.response))


def remember(uow: UnitOfWork, idem: IdempotencyKey, result: Any) -> None:
    uow.session.add(IdempotencyRecord(
        principal_key=principal_key(uow), mutation=idem.mutation, key=idem.key,
        request_hash=request_hash(idem.mutation, idem.input), response=json.dumps(_dump(result)),
    ))

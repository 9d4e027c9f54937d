"""What is known about the request being served: its id, its GraphQL operation, who sent it
and which error codes it met. One record per request, in a context variable, so that the
request's log line, its metrics and its span tell the same story (R91)."""

import os
import re
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

HEADER = "X-Request-Id"
# A caller's id is kept only when it is short and of safe characters: it is echoed in a header and
# written to every log line, so it must not smuggle in line breaks, quotes or a novel.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Operation names are client-chosen; GraphQL's own Name syntax, and bounded, before any log or label.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
# Client ids are ours, or an external issuer's (auth.external): bounded all the same.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:@/+-]{1,128}")


def request_id_from(sent: str | None) -> str:
    """The caller's X-Request-Id when it is sane, else a new one."""
    if sent is not None and _SANE_ID.fullmatch(sent):
        return sent
    return os.urandom(16).hex()  # as random as uuid4's, without building a UUID


def operation_name(name: str | None) -> str | None:
    """`name` when it is a GraphQL name of at most 64 characters, else None (anonymous)."""
    return name if name is not None and _NAME.fullmatch(name) else None


def error_code(code: object) -> str:
    """A code as it may be logged and counted: ours are upper-case words; anything else is OTHER."""
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "OTHER"


@dataclass
class RequestRecord:
    request_id: str
    operation: str | None = None
    operation_type: str | None = None
    client_id: str | None = None
    errors: list[str] = field(default_factory=list)  # top-level errors' codes, and refusals'
    user_errors: list[str] = field(default_factory=list)  # userErrors' codes in mutation payloads


_current: ContextVar[RequestRecord | None] = ContextVar("bureau_request", default=None)


def begin(request_id: str) -> tuple[RequestRecord, Token[RequestRecord | None]]:
    record = RequestRecord(request_id)
    return record, _current.set(record)


def end(token: Token[RequestRecord | None]) -> None:
    _current.reset(token)


def current() -> RequestRecord | None:
    return _current.get()


def current_id() -> str | None:
    record = _current.get()
    return record.request_id if record is not None else None


def note_errors(codes: Iterable[object]) -> None:
    record = _current.get()
    if record is not None:
        record.errors.extend(error_code(code) for code in codes)


def note_user_errors(codes: Iterable[object]) -> None:
    record = _current.get()
    if record is not None:
        record.user_errors.extend(error_code(code) for code in codes)


def note_client(client_id: str | None) -> None:
    record = _current.get()
    if record is not None and client_id:
        record.client_id = client_id if _CLIENT_ID.fullmatch(client_id) else "(unprintable)"


def note_operation(name: str | None, kind: str | None) -> None:
    record = _current.get()
    if record is not None:
        record.operation, record.operation_type = operation_name(name), kind

"""The SQL spellings of bureau's serialised values, so that PostgreSQL writes the JSON the
resolver path writes: global IDs as models/ids.py encodes them, cursors as
schema.types.common.encode_cursor does, timestamps as Python's datetime.isoformat()."""

import base64
import functools
import itertools
from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnClause


def text_literal(value: str) -> ColumnClause[Any]:
    """A constant of our own code (a type name, a JSON key), inlined so the SQL text, and so the
    prepared statement, stays the same from request to request. Never for a caller's value."""
    assert "'" not in value and "\\" not in value
    return literal_column(f"'{value}'", String)


DIGITS = "0123456789"


@functools.cache
def url_safe_as_is(prefix: str) -> bool:
    """Whether standard base64 of `prefix` and any row id after it never holds `+` or `/`, so that it
    is URL-safe base64 as it is. Three bytes of digits never encode to either (every six bits of
    '0'..'9' are below 62, and a final chunk's zero padding only lowers them), so only the chunk in
    which the prefix ends can: every way the digits of an id can complete it is tried."""
    completing = -len(prefix.encode()) % 3
    for count in range(completing + 1):
        for digits in itertools.product(DIGITS, repeat=count):
            encoded = base64.b64encode(f"{prefix}{''.join(digits)}".encode())
            if b"+" in encoded or b"/" in encoded:
                return False
    return True


def _base64(prefix: str, pk: ColumnElement[int]) -> ColumnElement[str]:
    # PostgreSQL breaks base64 lines at 76 characters; our inputs stay far below (at most 40 bytes).
    encoded = func.encode(func.convert_to(text_literal(prefix).op("||")(cast(pk, Text)), text_literal("UTF8")),
                          text_literal("base64"))
    # translate() was half of what an ID cost PostgreSQL (a microsecond each, 200 on a 100-member page).
    if url_safe_as_is(prefix):
        return encoded
    return func.translate(encoded, text_literal("+/"), text_literal("-_"))


def global_id(type_name: str, pk: ColumnElement[int]) -> ColumnElement[str]:
    """models.ids.encode: URL-safe base64 of "<Type>:<pk>" without padding."""
    return func.rtrim(_base64(f"{type_name}:", pk), text_literal("="))


def cursor(pk: ColumnElement[int]) -> ColumnElement[str]:
    """schema.types.common.encode_cursor: URL-safe base64 of "cursor:<pk>", padding kept."""
    return _base64("cursor:", pk)


def iso_timestamp(column: ColumnElement[Any]) -> ColumnElement[str]:
    """datetime.isoformat() of an aware UTC datetime: microseconds only when there are any."""
    utc = func.timezone(text_literal("UTC"), column)
    micros = func.to_char(utc, text_literal("US"))
    return (func.to_char(utc, text_literal('YYYY-MM-DD"T"HH24:MI:SS'))
            .op("||")(case((micros == text_literal("000000"), text_literal("")),
                           else_=text_literal(".").op("||")(micros)))
            .op("||")(text_literal("+00:00")))

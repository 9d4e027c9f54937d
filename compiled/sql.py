"""The SQL spellings of bureau's serialised values, so that PostgreSQL writes the JSON the
resolver path writes: global IDs as models/ids.py encodes them, cursors as
schema.types.common.encode_cursor does, timestamps as Python's datetime.isoformat()."""

from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnClause


def text_literal(value: str) -> ColumnClause[Any]:
    """A constant of our own code (a type name, a JSON key), inlined so the SQL text, and so the
    prepared statement, stays the same from request to request. Never for a caller's value."""
    assert "'" not in value and "\\" not in value
    return literal_column(f"'{value}'", String)


def _base64(value: ColumnElement[Any]) -> ColumnElement[str]:
    # PostgreSQL breaks base64 lines at 76 characters; our inputs stay far below (at most 40 bytes).
    return func.translate(func.encode(func.convert_to(value, text_literal("UTF8")), text_literal("base64")),
                          text_literal("+/"), text_literal("-_"))


def global_id(type_name: str, pk: ColumnElement[int]) -> ColumnElement[str]:
    """models.ids.encode: URL-safe base64 of "<Type>:<pk>" without padding."""
    return func.rtrim(_base64(text_literal(f"{type_name}:").op("||")(cast(pk, Text))), text_literal("="))


def cursor(pk: ColumnElement[int]) -> ColumnElement[str]:
    """schema.types.common.encode_cursor: URL-safe base64 of "cursor:<pk>", padding kept."""
    return _base64(text_literal("cursor:").op("||")(cast(pk, Text)))


def iso_timestamp(column: ColumnElement[Any]) -> ColumnElement[str]:
    """datetime.isoformat() of an aware UTC datetime: microseconds only when there are any."""
    utc = func.timezone(text_literal("UTC"), column)
    micros = func.to_char(utc, text_literal("US"))
    return (func.to_char(utc, text_literal('YYYY-MM-DD"T"HH24:MI:SS'))
            .op("||")(case((micros == text_literal("000000"), text_literal("")),
                           else_=text_literal(".").op("||")(micros)))
            .op("||")(text_literal("+00:00")))

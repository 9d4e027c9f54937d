"""Opaque global IDs: base64url of "<TypeName>:<primary key>"."""

import base64
import binascii

# Keys are 64-bit on PostgreSQL and SQLite alike: a larger number names nothing (R58).
MAX_PK = 2**63 - 1


class InvalidId(ValueError):
    pass


def encode(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode(global_id: str) -> tuple[str, int]:
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        # ASCII digits in the one spelling encode() makes: "007" or Arabic-Indic digits are no ID.
        if not type_name or not (pk.isascii() and pk.isdigit()) or str(int(pk)) != pk or int(pk) > MAX_PK:
            raise InvalidId(global_id)
        return type_name, int(pk)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidId(global_id) from exc


def decode_as(global_id: str, *type_names: str) -> int | None:
    """The primary key when the ID names one of the given types, else None."""
    try:
        type_name, pk = decode(global_id)
    except InvalidId:
        return None
    return pk if type_name in type_names else None


# Model class name -> GraphQL type name, where they differ.
_TYPE_NAMES = {"Subscription": "LicenseSubscription"}


def type_name(obj: object) -> str:
    name = type(obj).__name__
    return _TYPE_NAMES.get(name, name)


def of(obj: object) -> str:
    """The global ID of a model object."""
    pk: int = obj.id  # type: ignore[attr-defined]
    return encode(type_name(obj), pk)

"""The checked-in SDL is the schema exported from code, and the scope map covers it."""

from pathlib import Path

from graphql import GraphQLObjectType, build_schema, find_breaking_changes

from schema import schema
from schema.scopes import PUBLIC, SCOPES, VALUE_TYPES, is_structural, scope_of

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "contract" / "schema.graphql"

# What the later issues still have to add; this list may only shrink.
NOT_YET_BUILT: set[str] = set()


def test_what_is_listed_as_not_yet_built_is_really_missing() -> None:
    built = schema._schema.type_map
    present = [name for name in NOT_YET_BUILT if (name in built) or (
        "." in name and name.split(".")[0] in built
        and name.split(".")[1] in getattr(built[name.split(".")[0]], "fields", {}))]
    assert present == [], "remove these from NOT_YET_BUILT"


def test_checked_in_schema_is_the_exported_one() -> None:
    assert (ROOT / "schema.graphql").read_text() == schema.as_str() + "\n", "run `bureau schema export`"


def test_the_contract_is_kept_except_for_what_later_issues_add() -> None:
    if not CONTRACT.exists():
        return  # the contract lives beside the project on the project's machines
    broken = find_breaking_changes(build_schema(CONTRACT.read_text()), build_schema(schema.as_str()))
    unexpected = []
    for change in broken:
        name = change.description.split(" was removed")[0].removeprefix("Field ")
        if not (change.type.name in ("TYPE_REMOVED", "FIELD_REMOVED") and name in NOT_YET_BUILT):
            unexpected.append(change.description)
    assert unexpected == []


def test_every_field_has_a_scope_or_is_structural() -> None:
    unclassified = []
    for name, graphql_type in schema._schema.type_map.items():
        if name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field in graphql_type.fields:
            if scope_of(name, field) is None:
                unclassified.append(f"{name}.{field}")
    assert unclassified == []


def test_the_scope_map_names_only_what_exists() -> None:
    types = schema._schema.type_map
    contract = build_schema(CONTRACT.read_text()).type_map if CONTRACT.exists() else {}
    stale = []
    for type_name, fields in SCOPES.items():
        found = [t for t in (types.get(type_name), contract.get(type_name)) if t is not None]
        if not found:
            stale.append(type_name)
            continue
        names = {field for t in found for field in t.fields}  # type: ignore[attr-defined]
        stale += [f"{type_name}.{field}" for field in fields if field != "*" and field not in names]
    stale += [name for name in VALUE_TYPES if name not in types and name not in contract]
    assert stale == []


def test_object_types_are_scoped_not_public_by_accident() -> None:
    for name in ("Firm", "Agreement", "Company", "User", "Membership", "LicenseSubscription", "AuditEvent"):
        assert scope_of(name, "createdAt" if name != "User" else "name") not in (None, PUBLIC)
        assert not is_structural(name)

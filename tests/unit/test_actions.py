"""Every mutation declares its Action at the field (schema.mutations.base.mutation), as every
field declares its scope (schema.scopes); this walks the schema for both, and for any
Action or field rule that names what no longer exists."""

import pytest
from strawberry.types.base import StrawberryObjectDefinition

from auth.policy import ALLOWED, FIELD_READS, Action, rights_of
from models.enums import FirmRole, Role
from schema import schema
from schema.mutations.base import GUARD, Guard
from schema.scopes import SCOPES

# Actions that no mutation declares, and where they are decided instead.
DECIDED_ELSEWHERE = {
    Action.READ_COMPANY: "the role table only: what a role may read, for the role ceiling (auth.visibility reads)",
    Action.READ_SUBSCRIPTION: "Agreement/Firm.upcomingInvoice and the re-invoicing export",
}


def _mutation_fields() -> dict[str, Guard | None]:
    definition = schema.get_type_by_name("Mutation")
    assert isinstance(definition, StrawberryObjectDefinition)
    found: dict[str, Guard | None] = {}
    for field in definition.fields:
        guard = field.metadata.get(GUARD)
        found[schema.config.name_converter.get_graphql_name(field)] = guard if isinstance(guard, Guard) else None
    return found


def test_every_mutation_declares_an_action() -> None:
    undeclared = [name for name, guard in _mutation_fields().items() if guard is None]
    assert undeclared == []


def test_every_mutation_has_a_scope_and_the_scope_map_names_only_mutations() -> None:
    mutations = set(_mutation_fields())
    assert set(SCOPES["Mutation"]) == mutations


def test_every_action_is_used_and_the_list_of_exceptions_is_not_stale() -> None:
    declared = {guard.action for guard in _mutation_fields().values() if guard is not None}
    declared |= {Action.PLATFORM for guard in _mutation_fields().values() if guard and guard.vendor_when}
    used = declared | set(FIELD_READS.values())
    unused = [a.name for a in Action if a not in used and a not in DECIDED_ELSEWHERE]
    assert unused == [], "an Action nothing uses: remove it, or say where it is decided"
    assert [a.name for a in DECIDED_ELSEWHERE if a in used] == [], "now declared: remove it from DECIDED_ELSEWHERE"
    assert set(ALLOWED) == set(Action)


def test_field_rules_name_existing_fields() -> None:
    type_map = schema._schema.type_map
    stale = [f"{t}.{f}" for t, f in FIELD_READS if t not in type_map or f not in getattr(type_map[t], "fields", {})]
    assert stale == []


@pytest.mark.parametrize("role", list(Role) + list(FirmRole))
def test_every_role_has_rights(role: Role | FirmRole) -> None:
    assert Action.READ_COMPANY in rights_of(role)

"""R51: what a signed-in user without an email may ask for (schema.email_gate)."""

import pytest
from graphql import GraphQLObjectType, parse

from schema import schema
from schema.email_gate import OPEN, closed_fields


def test_every_open_field_exists() -> None:
    # A renamed field would otherwise close silently, or an open name outlive its field.
    missing = []
    for type_name, fields in OPEN.items():
        found = schema._schema.type_map.get(type_name)
        missing += [f"{type_name}.{f}" for f in fields
                    if not isinstance(found, GraphQLObjectType) or f not in found.fields]
    assert missing == []


@pytest.mark.parametrize("document", [
    "{ viewer { emailRequired clientId scopes user { id name email status loginMethods } } }",
    "{ __typename viewer { __typename emailRequired } }",
    "{ __schema { types { name } } }",
    'mutation { requestEmailChange(input: {email: "a@b.example"}) { user { email } userErrors { code } } }',
    "query { viewer { ...Me } } fragment Me on Viewer { user { email } }",
])
def test_the_viewer_and_the_email_change_are_open(document: str) -> None:
    assert closed_fields(schema._schema, parse(document)) == []


@pytest.mark.parametrize(("document", "closed"), [
    ("{ viewer { firms { totalCount } } }", "Viewer.firms"),
    ("{ viewer { memberships { totalCount } } }", "Viewer.memberships"),
    ("{ viewer { user { memberships { totalCount } } } }", "User.memberships"),
    ("query { viewer { ...Me } } fragment Me on Viewer { memberships { totalCount } }", "Viewer.memberships"),
    ('{ node(id: "x") { id } }', "Query.node"),
    ("{ catalog { editions { code } } }", "Query.catalog"),
    ('mutation { resendWelcomeEmail(input: {membershipId: "x"}) { userErrors { code } } }',
     "Mutation.resendWelcomeEmail"),
    ("subscription { auditEvents { id } }", "Subscription.auditEvents"),
])
def test_everything_else_waits_for_the_email(document: str, closed: str) -> None:
    assert closed in closed_fields(schema._schema, parse(document))

"""Deny by default: the OAuth scope every field needs, checked once per request before
execution (scopes depend only on the document and the token).

A type maps to a default scope ("*") and per-field overrides; PUBLIC needs only a valid
token. tests/unit/test_scopes.py fails when a type or field of the schema is missing
here, or when this map names one that no longer exists.
"""

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    visit,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema.documents import DOCUMENTS, Checked, Needs, Options, Rules
from schema.email_gate import email_gate_errors

PUBLIC = "public"

# Value types reached only through a guarded field: they add no scope of their own.
VALUE_TYPES = {
    "PageInfo", "Money", "UserError", "BillingPeriod", "SeatPool", "FeatureState", "ScheduledChange",
    "Address", "EInvoiceSettings", "ChangePreview", "ChargeableAccess", "ChargeLine", "OrderLine",
    "InvoiceLine", "Catalog", "Edition", "Feature", "WebhookAttempt",
}

SCOPES: dict[str, dict[str, str]] = {
    "Query": {"node": PUBLIC, "nodes": PUBLIC, "viewer": PUBLIC, "firm": "firms:read",
              "agreement": "agreements:read", "company": "companies:read", "catalog": PUBLIC},
    "Viewer": {"*": PUBLIC, "firms": "firms:read", "firm": "firms:read", "memberships": "users:read"},
    "OAuthClient": {"*": PUBLIC},
    "Node": {"id": PUBLIC},
    "Firm": {"*": "firms:read", "agreements": "agreements:read", "companies": "companies:read",
             "masterSubscription": "subscriptions:read", "billingDetails": "billing:read",
             "invoices": "billing:read", "upcomingInvoice": "billing:read", "auditLog": "audit:read",
             "incomingTransfers": "agreements:read", "webhookEndpoints": "firms:read"},
    "FirmMember": {"*": "firms:read"},
    "ClientUser": {"*": "firms:read"},
    "Agreement": {"*": "agreements:read", "subscription": "subscriptions:read",
                  "companies": "companies:read", "companyCount": "companies:read",
                  "billingDetails": "billing:read", "chargeableAccesses": "subscriptions:read",
                  "chargeBreakdown": "subscriptions:read", "invoices": "billing:read",
                  "upcomingInvoice": "billing:read", "transfer": "agreements:read"},
    "Company": {"*": "companies:read", "members": "users:read", "auditLog": "audit:read"},
    "User": {"*": "users:read"},
    "Membership": {"*": "users:read"},
    "LicenseSubscription": {"*": "subscriptions:read", "orders": "billing:read", "auditLog": "audit:read"},
    "LicenseSession": {"*": "subscriptions:read"},
    "Order": {"*": "billing:read"},
    "Invoice": {"*": "billing:read"},
    "InvoicePreview": {"*": "billing:read"},
    "BillingDetails": {"*": "billing:read"},
    "AuditEvent": {"*": "audit:read"},
    "AgreementTransfer": {"*": "agreements:read"},
    "WebhookEndpoint": {"*": "firms:read"},
    "WebhookDelivery": {"*": "firms:read"},
    "Mutation": {
        "createFirm": "platform:admin", "upsertEdition": "platform:admin", "upsertFeature": "platform:admin",
        "updateFirm": "firms:write", "addFirmStaff": "firms:write", "removeFirmStaff": "firms:write",
        "createAgreement": "agreements:write", "updateAgreement": "agreements:write",
        "deleteAgreement": "agreements:write", "moveCompany": "agreements:write",
        "createCompany": "companies:write", "updateCompany": "companies:write",
        "createSubscription": "subscriptions:write", "changeSeats": "subscriptions:write",
        "changeEdition": "subscriptions:write", "cancelScheduledChange": "subscriptions:write",
        "setFeature": "subscriptions:write",
        "inviteUser": "users:write", "grantAccountantAccess": "users:write", "updateMembership": "users:write",
        "deactivateMembership": "users:write", "reactivateMembership": "users:write",
        "resendWelcomeEmail": "users:write", "revokeAccountantAccess": "users:write",
        "requestEmailChange": "users:write",
        "correctUserIdentity": "platform:admin",
        "assignClientUser": "firms:write", "addClientUserCompany": "firms:write",
        "removeClientUserCompany": "firms:write",
        "startSession": "subscriptions:write", "renewSession": "subscriptions:write",
        "endSession": "subscriptions:write",
        "updateBillingDetails": "billing:write",
        "cancelSubscription": "subscriptions:write", "changeBillingInterval": "subscriptions:write",
        "archiveCompany": "companies:write", "unarchiveCompany": "companies:write",
        "archiveAgreement": "agreements:write", "unarchiveAgreement": "agreements:write",
        "removeClientUser": "firms:write", "issueCreditNote": "platform:admin",
        "offerAgreementTransfer": "agreements:write", "acceptAgreementTransfer": "agreements:write",
        "declineAgreementTransfer": "agreements:write", "withdrawAgreementTransfer": "agreements:write",
        "createWebhookEndpoint": "firms:write", "updateWebhookEndpoint": "firms:write",
        "deleteWebhookEndpoint": "firms:write", "rollWebhookSecret": "firms:write", "redeliverWebhook": "firms:write",
    },
    "Subscription": {"seatUsageChanged": "subscriptions:read", "auditEvents": "audit:read"},
}


def is_structural(type_name: str) -> bool:
    """Connections, edges and mutation payloads carry their parent field's scope."""
    return type_name.endswith(("Connection", "Edge", "Payload")) or type_name in VALUE_TYPES


def is_introspection(type_name: str, field_name: str) -> bool:
    """__schema, __type and __typename, and every field of the introspection types (__Type...)."""
    return field_name.startswith("__") or type_name.startswith("__")


def scope_of(type_name: str, field_name: str) -> str | None:
    """The scope a field needs; None when the field is unclassified (denied). Introspection needs
    none: BUREAU_INTROSPECTION decides who may read the schema (ScopeCheck)."""
    if is_introspection(type_name, field_name) or field_name == "id":
        return PUBLIC  # opaque IDs reveal nothing; the object itself is checked for visibility
    if is_structural(type_name):
        return PUBLIC
    fields = SCOPES.get(type_name)
    if fields is None:
        return None
    return fields.get(field_name, fields.get("*"))


def required_scopes(schema: GraphQLSchema, document: DocumentNode) -> Needs:
    """Every scope the document's fields need, the fields no one classified, and whether it asks
    for anything but introspection."""
    type_info = TypeInfo(schema)
    needed: set[str] = set()
    unknown: list[str] = []
    beyond_introspection = False

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            nonlocal beyond_introspection
            parent = type_info.get_parent_type()
            if parent is None:
                return
            parent_name = get_named_type(parent).name
            beyond_introspection = beyond_introspection or not is_introspection(parent_name, node.name.value)
            scope = scope_of(parent_name, node.name.value)
            if scope is None:
                unknown.append(f"{parent_name}.{node.name.value}")
            elif scope != PUBLIC:
                needed.add(scope)

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return Needs(frozenset(needed), tuple(unknown), beyond_introspection)


class ScopeCheck(SchemaExtension):
    """Refuses the whole operation with FORBIDDEN when the token lacks a needed scope, and
    with EMAIL_REQUIRED when a user without an email asks for more than schema.email_gate opens.
    Introspection follows BUREAU_INTROSPECTION: `off` refuses it to all (graphql-core's
    NoSchemaIntrospectionCustomRule); under `on` a caller without a token may introspect only.
    The document is validated here, once per process for each distinct one (schema.documents)."""

    def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
        super().__init__(execution_context=execution_context)  # type: ignore[arg-type]
        self.checked: Checked | None = None

    def _options(self) -> Options:
        return tuple(sorted(self.execution_context.parse_options.items()))

    def _rules(self) -> Rules:
        context = self.execution_context
        rules = tuple(context.validation_rules)
        if context.context.runtime.settings.introspection == "off":
            rules = (*rules, NoSchemaIntrospectionCustomRule)
        return rules

    def on_parse(self) -> Iterator[None]:
        # A document checked before needs no parsing: strawberry parses only when none is set.
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            self.checked = DOCUMENTS.find(context.query, self._rules(), self._options())
            if self.checked is not None:
                context.graphql_document = self.checked.document
        yield

    def on_validate(self) -> Iterator[None]:
        # Strawberry returns validation errors before an extension's post-yield code runs,
        # so validate here first and decide scopes before yielding.
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            checked = self.checked
            if checked is None or checked.document is not context.graphql_document:
                settings = context.context.runtime.settings
                checked = DOCUMENTS.check(context.schema._schema, context.query or "", context.graphql_document,
                                          self._rules(), self._options(), size=settings.document_cache_size,
                                          text_size=settings.document_cache_text,
                                          needs=lambda document: required_scopes(context.schema._schema, document))
            context.pre_execution_errors = checked.refusals() or self._scope_errors(checked)
        yield

    def _scope_errors(self, checked: Checked) -> list[GraphQLError]:
        assert checked.needs is not None
        needs = checked.needs
        principal = self.execution_context.context.principal
        if not principal.authenticated and needs.beyond_introspection:
            return [self._unauthenticated()]
        if needs.unclassified:
            return [GraphQLError(f"Fields not open to any caller: {', '.join(needs.unclassified)}",
                                 extensions={"code": "FORBIDDEN"})]
        missing = sorted(scope for scope in needs.scopes if not principal.has_scope(scope))
        if missing:
            return [GraphQLError(f"The access token lacks the scopes this operation needs: {' '.join(missing)}",
                                 extensions={"code": "FORBIDDEN", "missingScopes": missing})]
        if principal.email_required:  # R51, also decided from the document alone
            return email_gate_errors(checked.closed_fields(self.execution_context.schema._schema))
        return []

    def _unauthenticated(self) -> GraphQLError:
        """As the HTTP endpoint answers a request without a token (app.unauthenticated)."""
        response = self.execution_context.context.response
        if response is not None:
            response.status_code = 401
            response.headers["WWW-Authenticate"] = (
                'Bearer realm="bureau", error="invalid_request", error_description="missing bearer token"')
        return GraphQLError("Authentication required: missing bearer token; without one only introspection is open",
                            extensions={"code": "UNAUTHENTICATED"})

"""Who is calling: decided once per request from the access token."""

from dataclasses import dataclass, field

from models.enums import FirmRole, LicenseType, MembershipStatus, Role

PLATFORM_ADMIN = "platform:admin"


@dataclass(frozen=True)
class CompanyGrant:
    """A membership that grants its role (INVITED or ACTIVE, never DEACTIVATED)."""

    company_id: int
    agreement_id: int
    firm_id: int
    role: Role
    license_type: LicenseType
    status: MembershipStatus


@dataclass
class Grants:
    """The principal's roles, loaded once per request; every role check reads these."""

    firm_roles: dict[int, FirmRole] = field(default_factory=dict)
    companies: dict[int, CompanyGrant] = field(default_factory=dict)

    def company_roles_in_agreement(self, agreement_id: int) -> set[Role]:
        return {g.role for g in self.companies.values() if g.agreement_id == agreement_id}

    def member_firm_ids(self) -> set[int]:
        return {g.firm_id for g in self.companies.values()}

    def member_agreement_ids(self) -> set[int]:
        return {g.agreement_id for g in self.companies.values()}


@dataclass(frozen=True)
class PinSignIn:
    """A sign-in whose token carries the personal identity number on file (BankID, through a
    provider's pin claim). `linked`: its (issuer, sub) link is stored already; `pending`: the
    user or one of its memberships is still INVITED. Either calls for resolvers.accounts."""

    issuer: str
    subject: str
    linked: bool
    pending: bool

    @property
    def needs_work(self) -> bool:
        return not self.linked or self.pending


@dataclass
class Principal:
    client_id: str
    scopes: frozenset[str]
    user_id: int | None = None
    # A client-credentials token acts for the firm that owns the OAuth client.
    client_firm_id: int | None = None
    token_id: str | None = None
    grants: Grants = field(default_factory=Grants)
    # A signed-in user without an email gives one before anything else (R18; schema.email_gate).
    email_required: bool = False
    pin_sign_in: PinSignIn | None = None
    # False only for a caller without a token, who may introspect when BUREAU_INTROSPECTION=on.
    authenticated: bool = True

    @property
    def is_platform_admin(self) -> bool:
        return PLATFORM_ADMIN in self.scopes

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def firm_role(self, firm_id: int) -> FirmRole | None:
        if self.client_firm_id == firm_id:
            # The firm's own integration acts with the firm's full staff role; scopes limit it.
            return FirmRole.FIRM_ADMIN
        return self.grants.firm_roles.get(firm_id)

    def staff_firm_ids(self) -> set[int]:
        ids = set(self.grants.firm_roles)
        if self.client_firm_id is not None:
            ids.add(self.client_firm_id)
        return ids

    def home_firm_id(self) -> int | None:
        """The firm whose currency the caller sees prices in: its own, else the lowest-numbered
        firm it works for; None for the vendor."""
        if self.client_firm_id is not None:
            return self.client_firm_id
        firms = self.staff_firm_ids() | self.grants.member_firm_ids()
        return min(firms) if firms else None

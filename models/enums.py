"""Enumerations shared by the models, the rules and the API."""

import enum


class FirmRole(enum.StrEnum):
    FIRM_ADMIN = "FIRM_ADMIN"
    FIRM_ADVISOR = "FIRM_ADVISOR"


class Role(enum.StrEnum):
    REPORTER = "REPORTER"
    APPROVER = "APPROVER"
    ADMINISTRATOR = "ADMINISTRATOR"
    ACCOUNTANT = "ACCOUNTANT"


class LicenseType(enum.StrEnum):
    NAMED = "NAMED"
    CONCURRENT = "CONCURRENT"
    CLIENT_USER = "CLIENT_USER"


class MembershipStatus(enum.StrEnum):
    INVITED = "INVITED"
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"


class UserStatus(enum.StrEnum):
    INVITED = "INVITED"
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"


class PayType(enum.StrEnum):
    MONTHLY = "MONTHLY"
    HOURLY = "HOURLY"


class BillingMode(enum.StrEnum):
    FIRM = "FIRM"
    CUSTOMER = "CUSTOMER"


class BillingInterval(enum.StrEnum):
    MONTHLY = "MONTHLY"
    YEARLY = "YEARLY"


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class SalesChannel(enum.StrEnum):
    DIRECT = "DIRECT"
    MARKETPLACE = "MARKETPLACE"


class ScheduledChangeKind(enum.StrEnum):
    SEAT_DECREASE = "SEAT_DECREASE"
    EDITION_CHANGE = "EDITION_CHANGE"


class FeatureKind(enum.StrEnum):
    FEATURE = "FEATURE"
    INTEGRATION = "INTEGRATION"


class LoginMethod(enum.StrEnum):
    EMAIL = "EMAIL"
    BANKID = "BANKID"


class LinkPurpose(enum.StrEnum):
    """What a link in an email lets its holder do (models.oauth_grants.InvitationToken)."""

    INVITATION = "INVITATION"  # accept a membership
    ACCOUNT_SETUP = "ACCOUNT_SETUP"  # choose how to sign in (firm staff, who have no membership)
    EMAIL_CONFIRMATION = "EMAIL_CONFIRMATION"  # confirm the email given when accepting (R18)
    EMAIL_CHANGE = "EMAIL_CHANGE"  # confirm a new email the user asked for


class PriceBasis(enum.StrEnum):
    """Which price an amount is at: the catalog's, or the firm's reseller price (R24)."""

    LIST = "LIST"
    RESELLER = "RESELLER"


class UserErrorCode(enum.StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_INPUT = "INVALID_INPUT"
    AGREEMENT_NOT_EMPTY = "AGREEMENT_NOT_EMPTY"
    DUPLICATE_CUSTOMER_NUMBER = "DUPLICATE_CUSTOMER_NUMBER"
    RESELLER_AGREEMENT_REQUIRED = "RESELLER_AGREEMENT_REQUIRED"
    SEATS_BELOW_ACTIVE_USERS = "SEATS_BELOW_ACTIVE_USERS"
    SEAT_LIMIT_REACHED = "SEAT_LIMIT_REACHED"
    CONCURRENT_LIMIT_REACHED = "CONCURRENT_LIMIT_REACHED"
    CLIENT_USER_COMPANY_LIMIT = "CLIENT_USER_COMPANY_LIMIT"
    FIRM_NOT_CERTIFIED = "FIRM_NOT_CERTIFIED"
    EDITION_CHANGE_PENDING = "EDITION_CHANGE_PENDING"
    MANAGED_EXTERNALLY = "MANAGED_EXTERNALLY"
    VAT_CHANGE_REQUIRES_CONTRACT_TRANSFER = "VAT_CHANGE_REQUIRES_CONTRACT_TRANSFER"
    EMAIL_REQUIRED = "EMAIL_REQUIRED"
    IDENTITY_REQUIRED = "IDENTITY_REQUIRED"
    INVALID_PERSONAL_IDENTITY_NUMBER = "INVALID_PERSONAL_IDENTITY_NUMBER"
    ALREADY_MEMBER = "ALREADY_MEMBER"
    LAST_ADMINISTRATOR = "LAST_ADMINISTRATOR"
    INVOICE_ADDRESS_REQUIRED = "INVOICE_ADDRESS_REQUIRED"
    E_INVOICE_DETAILS_REQUIRED = "E_INVOICE_DETAILS_REQUIRED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    CONFLICT = "CONFLICT"
    IDENTITY_CONFLICT = "IDENTITY_CONFLICT"

"""The data model: SQLAlchemy 2 typed models, one module per aggregate."""

import models.oauth_grants  # noqa: F401 - the OAuth server's tables (auth/oauth_server.py)
from models.agreements import Agreement, AgreementTransfer
from models.audit import AuditEvent
from models.base import Base
from models.billing import Invoice, InvoiceLine, Order, OrderLine
from models.catalog import Edition, EditionPrice, Feature, FeaturePrice
from models.companies import Company
from models.data_versions import DataVersion
from models.firms import ClientUser, ClientUserCompany, Firm, FirmMember
from models.idempotency import IdempotencyRecord
from models.oauth import OAuthClient, ServerSecret, SigningKey
from models.outbox import OutboxEmail
from models.subscriptions import (
    LicenseSession,
    ScheduledChange,
    SeatPool,
    Subscription,
    SubscriptionFeature,
    SubscriptionPeriod,
)
from models.users import Membership, User
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSequence

__all__ = [
    "Agreement", "AgreementTransfer", "AuditEvent", "Base", "ClientUser", "ClientUserCompany", "Company", "DataVersion",
    "Edition", "EditionPrice", "Feature", "FeaturePrice", "Firm", "FirmMember",
    "IdempotencyRecord", "Invoice", "InvoiceLine", "LicenseSession", "Membership",
    "OAuthClient", "Order", "OrderLine", "OutboxEmail", "ScheduledChange", "SeatPool",
    "ServerSecret", "SigningKey", "Subscription", "SubscriptionFeature", "SubscriptionPeriod", "User",
    "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "WebhookEvent", "WebhookSequence",
]

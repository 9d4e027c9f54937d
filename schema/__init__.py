"""The GraphQL schema: strawberry types, inputs, payloads and errors; thin over resolvers."""

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from schema.cached_reads import MarkQueries
from schema.compiled_reads import CompiledReads
from schema.cost import QueryCost
from schema.errors import ErrorCodes
from schema.field_reads import guard_field_reads
from schema.input_checks import InputChecks
from schema.limits import RequestLimits
from schema.mutations.agreements import AgreementMutations
from schema.mutations.billing import BillingMutations
from schema.mutations.catalog import CatalogMutations
from schema.mutations.client_users import ClientUserMutations
from schema.mutations.firms import FirmMutations
from schema.mutations.memberships import MembershipMutations
from schema.mutations.sessions import SessionMutations
from schema.mutations.subscriptions import SubscriptionChangeMutations, SubscriptionMutations
from schema.mutations.transfers import TransferMutations
from schema.mutations.users import UserMutations
from schema.mutations.webhooks import WebhookMutations
from schema.observation import Observation
from schema.persisted_queries import PersistedOnly
from schema.query import Query
from schema.scopes import ScopeCheck
from schema.subscriptions import LiveOperations, Subscription
from schema.types.agreements import Agreement
from schema.types.audit import AuditEvent
from schema.types.billing import Invoice, Order
from schema.types.companies import Company
from schema.types.firms import ClientUser, Firm, FirmMember
from schema.types.subscriptions import LicenseSession, LicenseSubscription
from schema.types.transfers import AgreementTransfer
from schema.types.users import Membership, User
from schema.types.webhooks import WebhookEndpoint


@strawberry.type
class Mutation(FirmMutations, CatalogMutations, AgreementMutations, SubscriptionMutations,
               SubscriptionChangeMutations, UserMutations, MembershipMutations, BillingMutations, ClientUserMutations,
               SessionMutations, TransferMutations, WebhookMutations):
    pass


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """strawberry would log every error with the variables' values; ErrorCodes logs them (schema.errors)."""


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Firm, FirmMember, ClientUser, Agreement, Company, User, Membership, LicenseSubscription,
           LicenseSession, Order, Invoice, AuditEvent, AgreementTransfer, WebhookEndpoint],
    # PersistedOnly refuses a document not in the allow-list before RequestLimits looks at it (R75).
    # RequestLimits and InputChecks add validation rules in on_operation, before ScopeCheck validates;
    # QueryCost costs the document ScopeCheck has validated; CompiledReads, last, answers in place of
    # execution what compiles (schema.compiled_reads). Observation is first so that it finishes last,
    # when ErrorCodes has coded every error.
    extensions=[Observation, ErrorCodes, PersistedOnly, RequestLimits, InputChecks, ScopeCheck, QueryCost,
                LiveOperations, MarkQueries, CompiledReads],
)
guard_field_reads(schema._schema.type_map)

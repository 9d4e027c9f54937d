"""A validated query over the plain types, compiled into one SQL statement that returns the
answer's `data` as JSON (issue 13 item 3; R79-R81), as PostGraphile does: json_build_object
and json_agg over correlated subqueries, each level filtered by its type's visibility
expression from auth.visibility, connections paged as loaders.base.PageLoader pages them.

Only what is listed in FIELDS compiles. A field that does not (a field with a rule of its own, an
argument the resolver would refuse) is left to the resolvers, for that subtree only (R101): under
the nearest object that is a node, the statement writes a placeholder naming the object's ID,
and schema.compiled_reads has the resolvers answer those fields through `node(id)` and puts
their answers in its place. What cannot be split so (a directive we do not know, too many such
places) raises Unsupported and the whole operation runs through the resolvers instead. Every
level reads a fresh alias of its table, so that no subquery of a visibility filter correlates
with an enclosing level.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FieldDetailsList,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Text,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import util as sql_util

from auth import visibility as v
from auth.principal import Principal
from compiled.sql import cursor, global_id, iso_timestamp, text_literal
from licensing.usage import holds_seat
from loaders import relations as r
from loaders.base import PageArgs, PageLoader
from models import (
    Agreement,
    Company,
    Firm,
    LicenseSession,
    Membership,
    ScheduledChange,
    SeatPool,
    Subscription,
    User,
    ids,
)
from models import ClientUser as ClientUserRow
from models.enums import LicenseType, MembershipStatus, ScheduledChangeKind

Json = ColumnElement[Any]
DEFAULT_PAGE = 50  # as schema.types.common.page_args: the compiled path refuses what it would refuse
MAX_PAGE = 500
MAX_KEYS = 50  # json_build_object takes at most 100 arguments


class Unsupported(Exception):
    """The selection leaves what compiles: the resolver path answers the whole operation."""


class Whole(Unsupported):
    """Not to be split: the resolvers refuse it (an argument out of range), or answer it as one."""


# A subtree left to the resolvers is this object in the JSON: {"$bureau_fallback": n, "id": ...}.
# No data of ours is an object with this key, so its presence means: answered by the resolvers.
FALLBACK_KEY = "$bureau_fallback"
MOST_FALLBACKS = 20  # fields left to the resolvers in one operation; beyond, all of it is


@dataclass(frozen=True)
class Fallback:
    """A field the statement leaves to the resolvers: at the root (type_name None), or of each
    object of type `type_name` the statement found, whose ID its placeholder carries."""

    index: int
    type_name: str | None
    key: str
    nodes: tuple[FieldNode, ...]


def _adapt(expression: ColumnElement[bool], alias: FromClause) -> ColumnElement[bool]:
    """A visibility filter written over a model's table, over one alias of that table."""
    adapted: ColumnElement[bool] = sql_util.ClauseAdapter(alias).traverse(expression)
    return adapted


def _object(pairs: list[tuple[str, Json]]) -> Json:
    if len(pairs) > MAX_KEYS:
        raise Whole("too many keys for one json_build_object")
    args: list[Any] = []
    for key, value in pairs:
        args += [text_literal(key), value]
    return func.json_build_object(*args)


def decode_cursor(after: str) -> int:
    """schema.types.common.decode_cursor, except that anything it would refuse is Unsupported
    (the resolver path then gives the error it gives)."""
    import base64

    try:
        prefix, _, pk = base64.urlsafe_b64decode(after.encode()).decode().partition(":")
        if prefix == "cursor" and pk.isascii() and pk.isdigit() and int(pk) <= ids.MAX_PK:
            return int(pk)
    except ValueError:
        pass
    raise Whole("not a cursor")


@dataclass(frozen=True)
class Relation:
    """A connection: which loader's page (its model, parent column, visibility and filters)."""

    loader: type[PageLoader[Any]]
    node_type: str


CONNECTIONS: dict[tuple[str, str], Relation] = {
    ("Firm", "agreements"): Relation(r.AgreementsByFirmLoader, "Agreement"),
    ("Firm", "companies"): Relation(r.CompaniesByFirmLoader, "Company"),
    ("Agreement", "companies"): Relation(r.CompaniesByAgreementLoader, "Company"),
    ("Company", "members"): Relation(r.MembershipsByCompanyLoader, "Membership"),
}

# Plain columns: (column, how it is written). Enums are stored as their names, which is how
# GraphQL writes them. Fields of auth.policy.FIELD_READS are never here.
PLAIN, TIMESTAMP = "plain", "timestamp"
COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "Firm": {"name": ("name", PLAIN), "organizationNumber": ("organization_number", PLAIN),
             "country": ("country", PLAIN), "currency": ("currency", PLAIN), "isCertified": ("is_certified", PLAIN)},
    "Agreement": {"name": ("name", PLAIN), "customerNumber": ("customer_number", PLAIN),
                  "billingMode": ("billing_mode", PLAIN), "createdAt": ("created_at", TIMESTAMP),
                  "archivedAt": ("archived_at", TIMESTAMP)},
    "Company": {"name": ("name", PLAIN), "organizationNumber": ("organization_number", PLAIN),
                "vatNumber": ("vat_number", PLAIN), "country": ("country", PLAIN),
                "createdAt": ("created_at", TIMESTAMP), "archivedAt": ("archived_at", TIMESTAMP)},
    "Membership": {"role": ("role", PLAIN), "licenseType": ("license_type", PLAIN),
                   "employeeNumber": ("employee_number", PLAIN), "payType": ("pay_type", PLAIN),
                   "invitedAt": ("invited_at", TIMESTAMP), "invitationExpiresAt": ("invitation_expires_at", TIMESTAMP),
                   "activatedAt": ("activated_at", TIMESTAMP)},
    "User": {"name": ("name", PLAIN), "email": ("email", PLAIN), "status": ("status", PLAIN)},
    "LicenseSubscription": {"status": ("status", PLAIN), "channel": ("channel", PLAIN),
                            "billingInterval": ("billing_interval", PLAIN)},
}

# Many-to-one fields: (field's model, column of the parent holding its id, visibility).
Visible = Callable[[Principal], ColumnElement[bool]]
PARENTS: dict[tuple[str, str], tuple[str, str, Visible]] = {
    ("Company", "firm"): ("Firm", "firm_id", v.visible_firms),
    ("Company", "agreement"): ("Agreement", "agreement_id", v.visible_agreements),
    ("Agreement", "firm"): ("Firm", "firm_id", v.visible_firms),
    ("Membership", "user"): ("User", "user_id", v.visible_users),
    ("Membership", "company"): ("Company", "company_id", v.visible_companies),
}

TABLES: dict[str, Any] = {"Firm": Firm, "Agreement": Agreement, "Company": Company, "Membership": Membership,
                          "User": User, "LicenseSubscription": Subscription}
VISIBLE: dict[str, Visible] = {"Firm": v.visible_firms, "Agreement": v.visible_agreements,
                               "Company": v.visible_companies, "Membership": v.visible_memberships,
                               "User": v.visible_users, "LicenseSubscription": v.visible_subscriptions}
ROOT_FIELDS = {"firm": "Firm", "agreement": "Agreement", "company": "Company"}
SEAT_FIELDS = {"licenseType", "purchased", "inUse", "available", "nextPeriodPurchased", "__typename"}

# A non-null object the resolver would fail on (its row not visible: a broken invariant) is
# this in the JSON; no data string holds a NUL, so its presence means: fall back.
MISSING: ColumnElement[Any] = literal_column("'\"\\u0000\"'::json")
MISSING_TEXT = "\\u0000"


def fields_in(text: str) -> int:
    """schema.cost.actual_cost of the `data` a compiled statement wrote, counted on its text without
    parsing it (R115). Every object is json_build_object's, which writes each key as `"key" : `, and
    a key is a GraphQL name or a constant of ours, ending in neither a space nor a backslash. So of
    the `" : ` in the text, those not ending a key are a string's own quote (always escaped, `\\"`)
    or a string opening with " : " (its quote written after a space, or after `[` in a list)."""
    return text.count('" : ') - text.count('\\" : ') - text.count(' " : ') - text.count('[" : ')


# The request's one "now" (loaders.base.RequestDb.now) is given when the statement runs, so that
# a compiled statement serves again later: see schema.compiled_reads.
NOW = "now"

# R113: a statement that reads no list and at most these rows, each by its key, costs about what
# the response cache's data versions cost to read.
POINT_ROWS = 4


class Compiler:
    def __init__(self, schema: GraphQLSchema, operation: OperationDefinitionNode,
                 fragments: dict[str, FragmentDetails], variables: VariableValues, principal: Principal,
                 node_scopes: Mapping[str, str], max_node_ids: int) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.variables = variables
        self.principal = principal
        self.now: Any = bindparam(NOW, type_=Membership.__table__.c.access_ends_at.type, required=True)
        self.node_scopes = node_scopes
        self.reads = False  # whether any root field reads a row
        self.max_node_ids = max_node_ids
        self.fallbacks: list[Fallback] = []
        self.rows = 0  # objects read, each one row by its key
        self.lists = False  # whether a connection or a subscription's seats are read

    @property
    def point_read(self) -> bool:
        """Whether the statement reads a few rows by key and no list (R113). Only true once built."""
        return not self.lists and self.rows <= POINT_ROWS

    # ------------------------------------------------------------------ the root

    def statement(self) -> Select[Any]:
        query = self.schema.query_type
        assert query is not None
        grouped = collect_fields(self.schema, self.fragments, self.variables, query, self.operation)
        if grouped.new_defer_usages or grouped.forbidden_directive_instances:
            raise Whole("@defer")
        pairs = []
        for key, details in grouped.grouped_field_set.items():
            mark, reads = len(self.fallbacks), self.reads
            try:
                pairs.append((key, self.root_field(query, details)))
            except Whole:
                raise
            except Unsupported:
                del self.fallbacks[mark:]  # the field's own, inside what is now left to the resolvers whole
                self.reads = reads  # what it began to read is not read
                pairs.append((key, self._fallback(None, key, details, None)))
        if not self.reads:
            raise Unsupported("nothing to read: the resolvers answer without SQL")
        return select(cast(_object(pairs), Text))

    def root_field(self, query: GraphQLObjectType, details: FieldDetailsList) -> Json:
        name = self._field_name(details)
        if name == "__typename":
            return text_literal("Query")
        if name == "nodes":
            global_ids = self._args(query.fields[name], details)["ids"]
            if len(global_ids) > min(self.max_node_ids, MAX_KEYS * 2):
                raise Whole("too many ids: the resolver refuses them (R59)")
            if not global_ids:
                return literal_column("'[]'::json")
            return func.json_build_array(*(self.node(global_id, None, details) for global_id in global_ids))
        if name not in ROOT_FIELDS and name != "node":
            raise Unsupported(f"Query.{name}")
        return self.node(self._args(query.fields[name], details)["id"], ROOT_FIELDS.get(name), details)

    def node(self, global_id: str, expected: str | None, details: FieldDetailsList) -> Json:
        """schema.query.load_node: null for an ID that names nothing the caller may read."""
        try:
            type_name, pk = ids.decode(global_id)
        except ids.InvalidId:
            return literal_column("NULL")
        if expected is not None and type_name != expected:
            return literal_column("NULL")
        scope = self.node_scopes.get(type_name)
        if scope is None:
            return literal_column("NULL")
        if type_name not in TABLES:
            raise Unsupported(f"node of {type_name}")
        if not self.principal.has_scope(scope):
            return literal_column("NULL")  # as schema.query._lookup: a type whose read scope the token lacks
        self.reads = True
        table = TABLES[type_name].__table__.alias()
        where = [table.c.id == bindparam(None, pk, type_=table.c.id.type), self._visible(type_name, table)]
        return select(self.object(type_name, table, details)).where(*where).scalar_subquery()

    # ------------------------------------------------------------------ objects

    def object(self, type_name: str, row: FromClause, details: FieldDetailsList) -> Json:
        self.rows += 1
        graphql_type = self.schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType)
        grouped = collect_subfields(self.schema, self.fragments, self.variables, self.operation, graphql_type,
                                    details)
        if grouped.new_defer_usages or grouped.forbidden_directive_instances:
            raise Whole("@defer")
        pairs = []
        for key, sub in grouped.grouped_field_set.items():
            mark = len(self.fallbacks)
            try:
                pairs.append((key, self.field(graphql_type, row, sub)))
            except Whole:
                raise
            except Unsupported:
                del self.fallbacks[mark:]  # the field's own, inside what is now left to the resolvers whole
                if type_name not in self.node_scopes:
                    raise  # not a node: the enclosing object leaves this whole object to the resolvers
                pairs.append((key, self._fallback(type_name, key, sub, row)))
        return _object(pairs)

    def _fallback(self, type_name: str | None, key: str, details: FieldDetailsList, row: FromClause | None) -> Json:
        """R101: the placeholder of a field left to the resolvers."""
        if len(self.fallbacks) >= MOST_FALLBACKS or any(d.fragment_variable_values is not None for d in details):
            raise Whole("too many fields left to the resolvers")
        fallback = Fallback(len(self.fallbacks), type_name, key, tuple(d.node for d in details))
        self.fallbacks.append(fallback)
        marker: list[Any] = [text_literal(FALLBACK_KEY), literal_column(str(fallback.index))]
        if type_name is not None and row is not None:
            marker += [text_literal("id"), global_id(type_name, row.c.id)]
        return func.json_build_object(*marker)

    def field(self, parent: GraphQLObjectType, row: FromClause, details: FieldDetailsList) -> Json:
        type_name, name = parent.name, self._field_name(details)
        if name == "__typename":
            return text_literal(type_name)
        if name == "id":
            return global_id(type_name, row.c.id)
        column = COLUMNS.get(type_name, {}).get(name)
        if column is not None:
            return iso_timestamp(row.c[column[0]]) if column[1] == TIMESTAMP else row.c[column[0]]
        definition = parent.fields[name]
        if (type_name, name) in PARENTS:
            return self.parent_object(type_name, name, definition, row, details)
        if (type_name, name) in CONNECTIONS:
            return self.connection(CONNECTIONS[(type_name, name)], definition, row, details)
        if type_name == "Membership" and name == "status":
            return self.membership_status(row)
        if type_name == "Agreement" and name == "subscription":
            table = Subscription.__table__.alias()
            return (select(self.object("LicenseSubscription", table, details))
                    .where(table.c.agreement_id == row.c.id, self._visible("LicenseSubscription", table))
                    .correlate(row).scalar_subquery())
        if type_name == "LicenseSubscription" and name == "seats":
            return self.seats(row, details)
        raise Unsupported(f"{type_name}.{name}")

    def parent_object(self, type_name: str, name: str, definition: GraphQLField, row: FromClause,
                      details: FieldDetailsList) -> Json:
        target, column, _visible = PARENTS[(type_name, name)]
        table = TABLES[target].__table__.alias()
        found = select(self.object(target, table, details)).where(
            table.c.id == row.c[column], self._visible(target, table)).correlate(row).scalar_subquery()
        if isinstance(definition.type, GraphQLNonNull):
            return func.coalesce(found, MISSING)
        return found

    def membership_status(self, row: FromClause) -> Json:
        """licensing.memberships.effective_status (R52): from its end on, DEACTIVATED."""
        ended = (row.c.access_ends_at.isnot(None)) & (row.c.access_ends_at <= self.now)
        return case((ended, text_literal(MembershipStatus.DEACTIVATED.name)), else_=row.c.status)

    # ------------------------------------------------------------------ connections

    def connection(self, relation: Relation, definition: GraphQLField, parent_row: FromClause,
                   details: FieldDetailsList) -> Json:
        self.lists = True
        args = self._args(definition, details)
        page = self._page_args(relation, args)
        loader: Any = relation.loader
        table = loader.model.__table__.alias()
        # The loader's own conditions (visibility, search, filters) over this level's alias.
        spec = loader(None, self.principal)
        conditions = [_adapt(c, table) for c in spec.conditions(page)]
        parent_column = table.c[loader.parent.key]
        where = [parent_column == parent_row.c.id, *conditions]
        paged = list(where)
        if page.after is not None:
            paged.append(table.c.id > bindparam(None, page.after, type_=table.c.id.type))
        first = page.first
        rows = (select(table, func.row_number().over(order_by=table.c.id).label("_n"))
                .where(*paged).order_by(table.c.id).limit(first + 1).correlate(parent_row).lateral())
        in_page = rows.c._n <= first
        connection_type = get_named_type(definition.type)
        assert isinstance(connection_type, GraphQLObjectType)
        grouped = collect_subfields(self.schema, self.fragments, self.variables, self.operation, connection_type,
                                    details)
        if grouped.new_defer_usages or grouped.forbidden_directive_instances:
            raise Whole("@defer")
        pairs: list[tuple[str, Json]] = []
        for key, sub in grouped.grouped_field_set.items():
            name = self._field_name(sub)
            if name == "__typename":
                pairs.append((key, text_literal(connection_type.name)))
            elif name == "totalCount":
                # A table of its own: the page's alias is inside `rows`, not a level to correlate with.
                counted = loader.model.__table__.alias()
                where_counted = [counted.c[loader.parent.key] == parent_row.c.id,
                                 *(_adapt(c, counted) for c in spec.conditions(page))]
                count = (select(func.count()).select_from(counted).where(*where_counted)
                         .correlate(parent_row).scalar_subquery())
                pairs.append((key, count))
            elif name == "edges":
                edge = self.edge(connection_type.fields["edges"], relation, rows, sub)
                edges = func.json_agg(aggregate_order_by(edge, rows.c._n)).filter(in_page)
                pairs.append((key, func.coalesce(edges, literal_column("'[]'::json"))))
            elif name == "pageInfo":
                pairs.append((key, self.page_info(connection_type.fields["pageInfo"], rows, first, page, sub)))
            else:
                raise Unsupported(f"{connection_type.name}.{name}")
        # GROUP BY (): one row however many the page holds, also when no aggregate is selected
        # (only totalCount, say) and when the page is empty.
        return (select(_object(pairs)).select_from(rows).group_by(literal_column("()"))
                .correlate(parent_row).scalar_subquery())

    def edge(self, definition: GraphQLField, relation: Relation, rows: FromClause, details: FieldDetailsList) -> Json:
        edge_type = get_named_type(definition.type)
        assert isinstance(edge_type, GraphQLObjectType)
        grouped = collect_subfields(self.schema, self.fragments, self.variables, self.operation, edge_type, details)
        pairs: list[tuple[str, Json]] = []
        for key, sub in grouped.grouped_field_set.items():
            name = self._field_name(sub)
            if name == "__typename":
                pairs.append((key, text_literal(edge_type.name)))
            elif name == "cursor":
                pairs.append((key, cursor(rows.c.id)))
            elif name == "node":
                pairs.append((key, self.object(relation.node_type, rows, sub)))
            else:
                raise Unsupported(f"{edge_type.name}.{name}")
        return _object(pairs)

    def page_info(self, definition: GraphQLField, rows: FromClause, first: int, page: PageArgs,
                  details: FieldDetailsList) -> Json:
        info_type = get_named_type(definition.type)
        assert isinstance(info_type, GraphQLObjectType)
        grouped = collect_subfields(self.schema, self.fragments, self.variables, self.operation, info_type, details)
        in_page = rows.c._n <= first
        pairs: list[tuple[str, Json]] = []
        for key, sub in grouped.grouped_field_set.items():
            name = self._field_name(sub)
            if name == "__typename":
                pairs.append((key, text_literal("PageInfo")))
            elif name == "hasNextPage":
                pairs.append((key, func.count() > bindparam(None, first)))
            elif name == "hasPreviousPage":
                pairs.append((key, true() if page.after is not None else false()))
            elif name == "startCursor":
                pairs.append((key, cursor(func.min(rows.c.id).filter(in_page))))
            elif name == "endCursor":
                pairs.append((key, cursor(func.max(rows.c.id).filter(in_page))))
            else:
                raise Unsupported(f"PageInfo.{name}")
        return _object(pairs)

    def _page_args(self, relation: Relation, args: dict[str, Any]) -> PageArgs:
        """schema.types.common.page_args with the filters each field's resolver adds."""
        first = args.get("first")
        if first is None:
            first = DEFAULT_PAGE
        if not isinstance(first, int) or first < 0 or first > MAX_PAGE:
            raise Whole("`first` out of range")
        after = args.get("after")
        search = args.get("search")
        search = search.strip() if search and search.strip() else None
        filters: tuple[tuple[str, Any], ...] = ()
        if relation.node_type in ("Agreement", "Company") and not args.get("includeArchived", False):
            filters = (("archived_at", None),)
        if relation.node_type == "Membership" and args.get("role") is not None:
            filters = (("role", args["role"]),)
        known = {"first", "after", "search", "includeArchived", "role"}
        if set(args) - known:
            raise Whole("an argument the compiler does not know")
        return PageArgs(first, decode_cursor(after) if after else None, search, filters)

    # ------------------------------------------------------------------ seats

    def seats(self, subscription: FromClause, details: FieldDetailsList) -> Json:
        """LicenseSubscription.seats: the pools in licence-type order, in use as licensing.usage counts."""
        self.lists = True
        seat_type = self.schema.get_type("SeatPool")
        assert isinstance(seat_type, GraphQLObjectType)
        pool = SeatPool.__table__.alias()
        grouped = collect_subfields(self.schema, self.fragments, self.variables, self.operation, seat_type, details)
        if grouped.new_defer_usages or grouped.forbidden_directive_instances:
            raise Whole("@defer")
        in_use = self.in_use(subscription, pool)
        pairs: list[tuple[str, Json]] = []
        for key, sub in grouped.grouped_field_set.items():
            name = self._field_name(sub)
            if name not in SEAT_FIELDS:
                raise Unsupported(f"SeatPool.{name}")
            if name == "__typename":
                pairs.append((key, text_literal("SeatPool")))
            elif name == "licenseType":
                pairs.append((key, pool.c.license_type))
            elif name == "purchased":
                pairs.append((key, pool.c.purchased))
            elif name == "inUse":
                pairs.append((key, in_use))
            elif name == "available":
                pairs.append((key, func.greatest(pool.c.purchased - in_use, 0)))
            else:
                pairs.append((key, self.next_period_purchased(subscription, pool)))
        order = case({t.name: i for i, t in enumerate(LicenseType)}, value=pool.c.license_type)
        seats = (select(func.json_agg(aggregate_order_by(_object(pairs), order)))
                 .where(pool.c.subscription_id == subscription.c.id).correlate(subscription).scalar_subquery())
        return func.coalesce(seats, literal_column("'[]'::json"))

    def in_use(self, subscription: FromClause, pool: FromClause) -> ColumnElement[int]:
        """schema.types.subscriptions.LicenseSubscription._in_use over licensing.usage's rules."""
        member, company = Membership.__table__.alias(), Company.__table__.alias()
        named = (select(func.count(member.c.user_id.distinct()))
                 .select_from(member.join(company, company.c.id == member.c.company_id))
                 .where(member.c.license_type == LicenseType.NAMED.name,
                        _adapt(holds_seat(self.now), member),
                        company.c.agreement_id == subscription.c.agreement_id)
                 .correlate(subscription).scalar_subquery())
        session = LicenseSession.__table__.alias()
        live = (select(func.count()).select_from(session)
                .where(session.c.subscription_id == subscription.c.id, session.c.ended_at.is_(None),
                       session.c.expires_at > self.now).correlate(subscription).scalar_subquery())
        client_user = ClientUserRow.__table__.alias()
        assigned = (select(func.count()).select_from(client_user)
                    .where(client_user.c.firm_id == subscription.c.master_firm_id)
                    .correlate(subscription).scalar_subquery())
        return case(
            (pool.c.license_type == LicenseType.NAMED.name,
             case((subscription.c.agreement_id.is_(None), 0), else_=named)),
            (pool.c.license_type == LicenseType.CONCURRENT.name, live),
            else_=case((subscription.c.master_firm_id.is_(None), 0), else_=assigned),
        )

    def next_period_purchased(self, subscription: FromClause, pool: FromClause) -> ColumnElement[int]:
        """The last pending SEAT_DECREASE of the pool's type (in effective_on, id order), else purchased."""
        change = ScheduledChange.__table__.alias()
        decrease = (select(func.cast(change.c.to_value, pool.c.purchased.type))
                    .where(change.c.subscription_id == subscription.c.id, change.c.applied_at.is_(None),
                           change.c.cancelled_at.is_(None), change.c.kind == ScheduledChangeKind.SEAT_DECREASE.name,
                           change.c.license_type == pool.c.license_type)
                    .order_by(change.c.effective_on.desc(), change.c.id.desc()).limit(1)
                    .correlate(subscription, pool).scalar_subquery())
        return func.coalesce(decrease, pool.c.purchased)

    # ------------------------------------------------------------------ helpers

    def _visible(self, type_name: str, table: FromClause) -> ColumnElement[bool]:
        return _adapt(VISIBLE[type_name](self.principal), table)

    @staticmethod
    def _field_name(details: FieldDetailsList) -> str:
        first: FieldDetails = details[0]
        if first.fragment_variable_values is not None:
            raise Whole("fragment variables")
        node: FieldNode = first.node
        return node.name.value

    def _args(self, definition: GraphQLField, details: FieldDetailsList) -> dict[str, Any]:
        return get_argument_values(definition, details[0].node, self.variables)

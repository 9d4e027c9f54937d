"""Client users (R16, R17, R28, R29): firm-issued named licences for client companies.

Choices:
- A client user works in its companies through a Membership per company: role REPORTER
  (the least privilege; a company administrator may raise it) and licence type CLIENT_USER.
  Such memberships use no NAMED seat (usage.named_seat_holders counts NAMED only) and no
  concurrent seat; the seat they use is the firm's ClientUser row, counted by
  usage.client_users_assigned against the CLIENT_USER pool of the firm's master
  subscription. The membership and the ClientUserCompany link come and go together:
  removing a company deletes that company's CLIENT_USER membership (the audit log keeps
  the history), so no membership outlives its licence.
- A person who already has a membership in a company (of any licence type or status) is
  refused there with ALREADY_MEMBER rather than converted.
- Removing the last company is allowed: it is how a firm takes all access away from a
  client user. The ClientUser keeps its seat and can be given companies again.
- Certification (R16) is needed to assign a client user and to add a company; removing a
  company never is.

Concurrency (R28): assigning locks the CLIENT_USER SeatPool row of the firm's master
subscription (SELECT ... FOR UPDATE) before counting the firm's client users, so parallel
assignments queue up and each counts the ones committed before it. Adding or removing a
company locks the ClientUser row (the mutation's target), so the limit of five holds when
two companies are added at once. One ClientUser per firm and user is also a unique key:
a concurrent duplicate is retried and then answered with ALREADY_MEMBER.
"""

from collections.abc import Sequence

from sqlalchemy import func, select

from licensing import client_users as rules
from licensing.errors import RuleViolation
from licensing.usage import client_users_assigned
from models import ClientUser, ClientUserCompany, Company, Firm, Membership, SeatPool, Subscription, User
from models import ids as global_ids
from models.enums import LicenseType, MembershipStatus, Role, UserErrorCode
from resolvers.base import UnitOfWork
from resolvers.memberships import End, change_access
from resolvers.periods import advance
from resolvers.users import check_identity, find_or_create_user


async def firm_company(uow: UnitOfWork, firm_id: int, company_id: str, field: Sequence[str]) -> Company:
    """One of the firm's own client companies; NOT_FOUND for any other (R17)."""
    pk = global_ids.decode_as(company_id, "Company")
    company = None
    if pk is not None:
        company = await uow.session.scalar(select(Company).where(Company.id == pk, Company.firm_id == firm_id))
    if company is None:
        raise RuleViolation(UserErrorCode.NOT_FOUND, "No client company of this firm with that ID.", field)
    return company


async def lock_client_user_pool(uow: UnitOfWork, firm_id: int) -> SeatPool | None:
    """The CLIENT_USER pool of the firm's master subscription, locked until commit (R28)."""
    master = select(Subscription.id).where(Subscription.master_firm_id == firm_id).scalar_subquery()
    return await uow.session.scalar(
        select(SeatPool)
        .where(SeatPool.subscription_id == master, SeatPool.license_type == LicenseType.CLIENT_USER)
        .with_for_update()
    )


async def count_assigned(uow: UnitOfWork, firm_id: int) -> int:
    rows = (await uow.session.execute(client_users_assigned([firm_id]))).all()
    return int(rows[0][1]) if rows else 0


async def _add_company(uow: UnitOfWork, client_user: ClientUser, user: User, company: Company,
                       field: Sequence[str]) -> None:
    taken = await uow.session.scalar(
        select(Membership.id).where(Membership.user_id == user.id, Membership.company_id == company.id)
    )
    if taken is not None:
        raise RuleViolation(UserErrorCode.ALREADY_MEMBER,
                            f"{user.name} already has a membership in {company.name}.", field)
    now = uow.runtime.now()
    membership = Membership(
        firm_id=company.firm_id,
        company_id=company.id,
        user_id=user.id,
        role=Role.REPORTER,
        license_type=LicenseType.CLIENT_USER,
        status=MembershipStatus.INVITED,
        invited_at=now,
        # The seat is the ClientUser's, not the invitation's: nothing lapses here.
        invitation_expires_at=None,
    )
    uow.session.add(membership)
    uow.session.add(ClientUserCompany(firm_id=client_user.firm_id, client_user_id=client_user.id,
                                      company_id=company.id))
    await uow.session.flush()
    uow.audit(
        "client_user.company_added", client_user, f"Client user {user.name} may work in {company.name}",
        after={"company": global_ids.of(company), "membership": global_ids.of(membership),
               "role": Role.REPORTER.value, "licenseType": LicenseType.CLIENT_USER.value},
        company_id=company.id,
    )


async def assign_client_user(
    uow: UnitOfWork,
    firm: Firm,
    *,
    user_id: str | None,
    name: str | None,
    email: str | None,
    company_ids: Sequence[str],
) -> ClientUser:
    field = ["input"]
    rules.check_certified(firm.is_certified, [*field, "firmId"])
    rules.check_who(user_id, name, email, field)
    rules.check_company_count(len(company_ids), [*field, "companyIds"])
    rules.check_distinct(company_ids, [*field, "companyIds"])
    companies = [await firm_company(uow, firm.id, company_id, [*field, "companyIds", str(index)])
                 for index, company_id in enumerate(company_ids)]
    if user_id is not None:
        user = await uow.get(User, user_id, [*field, "userId"])
        who_field = [*field, "userId"]
    else:
        who = await check_identity(uow, email, None, field)
        user = await find_or_create_user(uow, name or "", who, field)
        who_field = [*field, "email"]
    # R105 (R38): the master licence's period that is over ends first, with its scheduled changes.
    master = await uow.session.scalar(select(Subscription.id).where(Subscription.master_firm_id == firm.id))
    if master is not None:
        await advance(uow, master, uow.runtime.today())
    pool = await lock_client_user_pool(uow, firm.id)
    taken = await uow.session.scalar(
        select(ClientUser.id).where(ClientUser.firm_id == firm.id, ClientUser.user_id == user.id)
    )
    if taken is not None:
        raise RuleViolation(UserErrorCode.ALREADY_MEMBER, f"{user.name} is already a client user of this firm.",
                            who_field)
    rules.check_seat_free(pool.purchased if pool else 0, await count_assigned(uow, firm.id), [*field, "firmId"])
    client_user = ClientUser(firm_id=firm.id, user_id=user.id)
    uow.session.add(client_user)
    await uow.session.flush()
    uow.audit(
        "client_user.assigned", client_user, f"{user.name} assigned as a client user of {firm.name}",
        after={"user": global_ids.of(user), "companies": [global_ids.of(c) for c in companies]},
        affects=[firm],  # a CLIENT_USER seat of its master licence
    )
    for index, company in enumerate(companies):
        await _add_company(uow, client_user, user, company, [*field, "companyIds", str(index)])
    return client_user


async def add_client_user_company(uow: UnitOfWork, client_user: ClientUser, *, company_id: str) -> ClientUser:
    """The client user's row is locked by the mutation (Target lock), so two adds queue up."""
    field = ["input", "companyId"]
    firm = await uow.session.get_one(Firm, client_user.firm_id)
    rules.check_certified(firm.is_certified, ["input", "clientUserId"])
    company = await firm_company(uow, firm.id, company_id, field)
    current = list(await uow.session.scalars(
        select(ClientUserCompany.company_id).where(ClientUserCompany.client_user_id == client_user.id)
    ))
    if company.id in current:
        raise RuleViolation(UserErrorCode.ALREADY_MEMBER, "The client user already works in this company.", field)
    rules.check_can_add_company(len(current), field)
    user = await uow.session.get_one(User, client_user.user_id)
    await _add_company(uow, client_user, user, company, field)
    return client_user


async def remove_client_user_company(uow: UnitOfWork, client_user: ClientUser, *, company_id: str) -> ClientUser:
    """Takes the client user out of one company, with its CLIENT_USER membership there; the
    last company may go too (the ClientUser and its seat stay)."""
    field = ["input", "companyId"]
    pk = global_ids.decode_as(company_id, "Company")
    link = None
    if pk is not None:
        link = await uow.session.scalar(
            select(ClientUserCompany).where(ClientUserCompany.client_user_id == client_user.id,
                                            ClientUserCompany.company_id == pk)
        )
    if link is None:
        raise RuleViolation(UserErrorCode.NOT_FOUND, "The client user does not work in that company.", field)
    membership = await uow.session.scalar(
        select(Membership).where(Membership.user_id == client_user.user_id, Membership.company_id == link.company_id,
                                 Membership.license_type == LicenseType.CLIENT_USER)
    )
    before = {"company": global_ids.encode("Company", link.company_id),
              "membership": global_ids.of(membership) if membership else None,
              "role": membership.role.value if membership else None,
              "status": membership.status.value if membership else None}
    if membership is not None:
        await change_access(uow, membership, field, end=End.REMOVE)
    await uow.session.delete(link)
    await uow.session.flush()
    remaining = await uow.session.scalar(
        select(func.count()).select_from(ClientUserCompany).where(ClientUserCompany.client_user_id == client_user.id)
    )
    uow.audit(
        "client_user.company_removed", client_user, "Client user removed from a company",
        before=before, after={"company": None, "companiesLeft": int(remaining or 0)},
        company_id=link.company_id,
    )
    return client_user


async def remove_client_user(uow: UnitOfWork, client_user: ClientUser) -> str:
    """R16/R17: ends every assignment and membership of the client user, through the one path
    that keeps R21, and frees its CLIENT_USER seat (so the seat count may then go down)."""
    field = ["input", "clientUserId"]
    companies = []
    for link in (await uow.session.scalars(select(ClientUserCompany).where(
            ClientUserCompany.client_user_id == client_user.id))).all():
        membership = await uow.session.scalar(select(Membership).where(
            Membership.user_id == client_user.user_id, Membership.company_id == link.company_id,
            Membership.license_type == LicenseType.CLIENT_USER))
        if membership is not None:
            await change_access(uow, membership, field, end=End.REMOVE)
        companies.append(global_ids.encode("Company", link.company_id))
        await uow.session.delete(link)
    await uow.session.flush()  # the links go before their client user (no ORM relationship orders them)
    gid = global_ids.of(client_user)
    uow.audit("client_user.removed", client_user, "Client user released; its seat is free",
              before={"user": global_ids.encode("User", client_user.user_id), "companies": companies},
              affects=[await uow.session.get_one(Firm, client_user.firm_id)])
    await uow.session.delete(client_user)
    await uow.session.flush()
    return gid

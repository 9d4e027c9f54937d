"""Demo data for a first run: one firm with agreements, companies, users and subscriptions,
made through the same resolvers the API uses, so the demo obeys every rule."""

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from auth.clients import ALL_SCOPES, register_client
from auth.principal import Principal
from models import Firm
from models.enums import BillingInterval, BillingMode, FirmRole, LicenseType, Role, SalesChannel
from resolvers import agreements, companies, firms, subscriptions, users
from resolvers.agreements import NewAgreement
from resolvers.base import UnitOfWork, run_in_transaction
from resolvers.companies import NewCompany
from resolvers.runtime import Runtime

DEMO_FIRM = "Demo Redovisning AB"
DEMO_ADMIN = "anna.admin@demo.example"


async def load_demo(runtime: Runtime) -> tuple[str, str]:
    """Loads the demo once; returns (client_id, firm admin email)."""
    vendor = Principal(client_id="bureau-demo", scopes=frozenset(ALL_SCOPES))

    async def build(uow: UnitOfWork) -> str:
        client = await register_client(uow.session, name="Demo console", scopes=list(ALL_SCOPES))
        if await uow.session.scalar(select(Firm.id).where(Firm.name == DEMO_FIRM)) is not None:
            return client.client_id  # loaded before: a new console client, the same data
        firm = await firms.create_firm(uow, name=DEMO_FIRM, organization_number="556000-0001",
                                       country="SE", currency="SEK")
        await firms.update_firm(uow, firm, name=None, has_reseller_agreement=True, is_certified=True,
                                reseller_discount_percent=Decimal("15.00"))
        await firms.add_firm_staff(uow, firm, name="Anna Admin", email=DEMO_ADMIN, role=FirmRole.FIRM_ADMIN)
        await firms.add_firm_staff(uow, firm, name="Erik Advisor", email="erik.advisor@demo.example",
                                   role=FirmRole.FIRM_ADVISOR)
        await subscriptions.create_subscription(
            uow, firm, edition_code="PLUS", billing_interval=BillingInterval.MONTHLY,
            seat_counts=[(LicenseType.CONCURRENT, 3), (LicenseType.CLIENT_USER, 10)],
            starts_on=date.today().replace(day=1), channel=SalesChannel.DIRECT)
        customers = [
            ("Bageriet i Byn", "1001", BillingMode.FIRM, ["Bageriet i Byn AB", "Bageriet Fastigheter AB"]),
            ("Snickare Svensson", "1002", BillingMode.CUSTOMER, ["Svensson Bygg AB"]),
            ("Kaffekompaniet", None, BillingMode.FIRM, ["Kaffekompaniet HB"]),
        ]
        for index, (name, number, mode, company_names) in enumerate(customers):
            agreement, first = await agreements.create_agreement(
                uow, firm, NewAgreement(name, number, mode), NewCompany(company_names[0], None, None, "SE"))
            assert first is not None
            made = [first]
            for extra in company_names[1:]:
                made.append(await companies.create_company(uow, agreement, NewCompany(extra, None, None, "SE")))
            await subscriptions.create_subscription(
                uow, agreement, edition_code=["STANDARD", "PLUS", "PREMIUM"][index],
                billing_interval=BillingInterval.MONTHLY if index != 1 else BillingInterval.YEARLY,
                seat_counts=[(LicenseType.NAMED, 5), (LicenseType.CONCURRENT, 2)],
                starts_on=None, channel=SalesChannel.DIRECT)
            owner = f"{name.split()[0].lower()}@customer.example"
            for company in made:
                await users.invite_user(uow, company, name=f"{name} owner", email=owner,
                                        personal_identity_number=None, role=Role.ADMINISTRATOR,
                                        license_type=LicenseType.NAMED, send_welcome_email=False)
            if index == 0:  # a BankID-only user: no email, a personal identity number
                await users.invite_user(uow, made[0], name="Berit Bokförare", email=None,
                                        personal_identity_number="19811228-9874", role=Role.REPORTER,
                                        license_type=LicenseType.CONCURRENT, send_welcome_email=False)
        return client.client_id

    outcome = await run_in_transaction(runtime, vendor, build)
    if outcome.errors:
        raise RuntimeError(outcome.errors[0].message)
    assert outcome.value is not None
    return outcome.value, DEMO_ADMIN


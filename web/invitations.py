"""GET/POST /invitations/{token}: the pages of the links sent by email.

What a link does is decided in resolvers/invitations.py, in a unit of work; this module
checks CSRF, limits sign-in attempts, and renders.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from auth.passwords import MIN_PASSWORD_LENGTH, AttemptLimiter, Limited
from auth.principal import Principal
from licensing.errors import RuleViolation
from models.enums import LinkPurpose, UserErrorCode
from models.oauth_grants import token_digest
from resolvers import invitations
from resolvers.base import Outcome, UnitOfWork, run_in_transaction
from resolvers.runtime import Runtime
from web.csrf import Csrf
from web.pages import client_address, e, error_block, field, form_text, hidden, page, wait_text

T = TypeVar("T")
# Who acts when a link is opened: nobody signed in; the audit names the link's user.
LINK_HOLDER = Principal(client_id="", scopes=frozenset())


@dataclass(frozen=True)
class LinkView:
    """What the page shows of an open link (plain values: they outlive the transaction)."""

    purpose: LinkPurpose
    user_name: str
    user_email: str | None
    company_name: str | None
    pending_email: str | None
    asks_for_email: bool
    sets_password: bool
    has_password: bool
    what: str

    @classmethod
    def of(cls, link: invitations.Link) -> "LinkView":
        return cls(link.row.purpose, link.user.name, link.user.email, link.company.name if link.company else None,
                   link.row.pending_email, link.asks_for_email, link.sets_password,
                   link.user.password_hash is not None, link.what)


@dataclass
class InvitationPages:
    runtime: Runtime
    limiter: AttemptLimiter
    csrf: Csrf

    async def _run(self, work: Callable[[UnitOfWork], Awaitable[T]], *, dry_run: bool = False) -> Outcome[T]:
        return await run_in_transaction(self.runtime, LINK_HOLDER, work, dry_run=dry_run)

    async def _view(self, token: str) -> LinkView | None:
        async def look(uow: UnitOfWork) -> LinkView | None:
            link = await invitations.open_link(uow, token, lock=False)
            return LinkView.of(link) if link else None

        return (await self._run(look, dry_run=True)).value

    async def handle(self, request: HttpRequest) -> HttpResponse:
        token = request.path_params["token"]
        purpose = "invitation:" + token_digest(token)
        view = await self._view(token)
        if view is None:
            return page("Invitation not valid", (
                '<p class="error" role="alert">This link is not valid any more: it was used already, or it has '
                "expired.</p>\n<p>Ask the person who invited you to send a new one.</p>"), 404)
        if request.method == "GET":
            return await self._page(request, view, purpose)
        form = await request.form()
        if not await self.csrf.check(request, form_text(form, "csrf_token"), purpose):
            return await self._page(request, view, purpose, status=400,
                                    error="The form had expired. Please try again.")
        if view.pending_email is not None:
            return await self._act(request, view, purpose, token, invitations.confirm_email)
        if view.has_password:
            return await self._sign_in(request, view, purpose, token, form_text(form, "password"))
        typed, password, again = (form_text(form, name) for name in ("email", "password", "password_again"))
        return await self._act(request, view, purpose, token, lambda uow, link: invitations.accept(
            uow, link, email=typed, password=password, password_again=again), email=typed)

    async def _sign_in(self, request: HttpRequest, view: LinkView, purpose: str, token: str,
                       password: str) -> HttpResponse:
        """Accepting as a user with a password means signing in as that user, with the same limits."""
        assert view.user_email is not None
        attempt = await self.limiter.begin(view.user_email, client_address(request))
        if isinstance(attempt, Limited):
            return await self._page(request, view, purpose, status=429,
                                    error=f"Too many sign-in attempts. Try again in {wait_text(attempt.retry_after)}.",
                                    headers={"Retry-After": str(attempt.retry_after)})
        response = await self._act(request, view, purpose, token,
                                   lambda uow, link: invitations.sign_in_and_accept(uow, link, password=password))
        if response.status_code == 200:
            await self.limiter.succeeded(attempt)
        return response

    async def _act(self, request: HttpRequest, view: LinkView, purpose: str, token: str,
                   act: Callable[[UnitOfWork, invitations.Link], Awaitable[Any]], email: str = "") -> HttpResponse:
        async def work(uow: UnitOfWork) -> Any:
            link = await invitations.open_link(uow, token, lock=True)
            if link is None:
                raise RuleViolation(UserErrorCode.NOT_FOUND, "This link is not valid any more.")
            return await act(uow, link)

        outcome = await self._run(work)
        if outcome.errors:
            error = outcome.errors[0]
            if error.code is UserErrorCode.NOT_FOUND:
                return page("Invitation not valid", f'<p class="error" role="alert">{e(error.message)}</p>', 404)
            if view.pending_email is not None:  # a confirmation: nothing to type again
                return page("Email already in use", f'<p class="error" role="alert">{e(error.message)} Open the '
                            "first link again and give another address.</p>", 409)
            status = 401 if error.field == ["password"] and view.has_password else 400
            return await self._page(request, view, purpose, status=status, error=error.message, email=email)
        if isinstance(outcome.value, invitations.ConfirmationSent):
            return page("Check your email", (
                f"<p>We sent a link to <strong>{e(outcome.value.email)}</strong>. Open it to confirm the address "
                f"and finish {e(view.what)}.</p>\n<p>Wrong address? Open the first link again and give another "
                "one.</p>"))
        return _done_page(view)

    async def _page(self, request: HttpRequest, view: LinkView, purpose: str, *, error: str | None = None,
                    status: int = 200, email: str = "", headers: dict[str, str] | None = None) -> HttpResponse:
        token, cookie = await self.csrf.issue(request, purpose)
        action = e(request.path_params["token"])
        if view.pending_email is not None:
            body = (f"<p>Confirm that <strong>{e(view.pending_email)}</strong> is your email address "
                    f"to finish {e(view.what)}.</p>\n"
                    f'{error_block(error)}<form method="post" action="{action}">\n{hidden("csrf_token", token)}'
                    '<button type="submit">Confirm my email</button>\n</form>')
            return self.csrf.set_cookie(page("Confirm your email", body, status, headers), cookie)
        if view.company_name is not None:
            title, button = "Accept your invitation", "Accept the invitation"
            intro = f"<p>Hello {e(view.user_name)}, you are invited to <strong>{e(view.company_name)}</strong>.</p>\n"
        else:
            title, button = "Set up your account", "Set up my account"
            intro = f"<p>Hello {e(view.user_name)}, choose how you will sign in to bureau.</p>\n"
        fields = ""
        if view.has_password:
            intro += (f"<p>You already have an account: sign in as <strong>{e(view.user_email or '')}</strong> "
                      "to accept.</p>\n")
            fields += field("password", "Password", "password", autocomplete="current-password", error=bool(error))
        elif not view.sets_password:
            body = (f"{intro}<p>Your account signs in another way: sign in from your app, and the invitation is "
                    "yours. This link cannot set a password.</p>")
            return page(title, body, status)
        else:
            if view.asks_for_email:
                fields += field("email", "Email", "email", autocomplete="email", value=email, error=bool(error),
                                hint="We will send a link to this address to confirm it.")
            fields += field("password", "Choose a password", "password", autocomplete="new-password",
                            error=bool(error), hint=f"At least {MIN_PASSWORD_LENGTH} characters.")
            fields += field("password_again", "Repeat the password", "password", autocomplete="new-password",
                            error=bool(error))
        body = (f"{intro}{error_block(error)}"
                f'<form method="post" action="{action}">\n{hidden("csrf_token", token)}{fields}'
                f'<button type="submit">{button}</button>\n</form>')
        return self.csrf.set_cookie(page(title, body, status, headers), cookie)


def _done_page(view: LinkView) -> HttpResponse:
    if view.purpose is LinkPurpose.EMAIL_CHANGE:
        return page("Email changed", f"<p>All done. Your email is now {e(view.pending_email or '')}.</p>")
    where = f" Welcome to <strong>{e(view.company_name)}</strong>." if view.company_name else ""
    email = view.pending_email or view.user_email
    return page("Invitation accepted" if view.company_name else "Account ready", (
        f"<p>All done.{where} You can now sign in from your app with "
        f"{e(email or 'your email')} and your password.</p>"))


def invitation_routes(runtime: Runtime, limiter: AttemptLimiter, csrf: Csrf) -> list[Route]:
    pages = InvitationPages(runtime, limiter, csrf)
    return [Route("/invitations/{token}", pages.handle, methods=["GET", "POST"])]

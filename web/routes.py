"""The routes of the authorization server and of the links sent by email, for the app."""

from starlette.routing import Route

from auth.passwords import AttemptLimiter, AttemptLimits
from resolvers.runtime import Runtime
from web.csrf import Csrf
from web.invitations import invitation_routes
from web.oauth import oauth_routes


def web_routes(runtime: Runtime, limits: AttemptLimits | None = None) -> list[Route]:
    """One attempt limiter for every page that takes a password, one CSRF key for every form."""
    limiter = AttemptLimiter(runtime.database.sessions, runtime.now, limits)
    csrf = Csrf(runtime.database, secure=runtime.settings.issuer.startswith("https://"))
    return [*oauth_routes(runtime, limiter, csrf), *invitation_routes(runtime, limiter, csrf)]

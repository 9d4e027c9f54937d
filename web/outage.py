"""The answer to a request while the database is down (R54): 503 with Retry-After, at once,
in the error shape of the endpoint's family, never a text/plain 500.

- /graphql: a GraphQL error with `extensions.code` SERVICE_UNAVAILABLE;
- /oauth/*: OAuth's own error, `temporarily_unavailable` (RFC 6749 section 4.1.2.1);
- everything else (/exports/..., /readyz, /invitations/..., keys): RFC 9457 problem details.

Which exceptions are an outage is decided in models/outage.py; web.front_door answers them.
"""

import json

from starlette.responses import Response

from models.outage import MESSAGE
from observability import requests


def outage_response(path: str, retry_after: int) -> Response:
    """The 503 for `path`'s endpoint family."""
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    requests.note_errors(["SERVICE_UNAVAILABLE"])
    if path == "/graphql" or path.startswith("/graphql/"):
        body: dict[str, object] = {"data": None, "errors": [
            {"message": MESSAGE, "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}
        if requests.current_id() is not None:
            body["extensions"] = {"requestId": requests.current_id()}
        media_type = "application/json"
    elif path.startswith("/oauth/"):
        body = {"error": "temporarily_unavailable", "error_description": MESSAGE}
        media_type = "application/json"
    else:
        body = {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": MESSAGE}
        media_type = "application/problem+json"
    return Response(json.dumps(body), status_code=503, media_type=media_type, headers=headers)

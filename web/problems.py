"""Error answers given outside GraphQL execution, in one shape per endpoint family (R60):

- /graphql: a GraphQL response, `{"data": null, "errors": [{"message", "extensions": {"code"}}]}`;
- /oauth/*: OAuth's own error JSON (RFC 6749 section 5.2), `{"error", "error_description"}`;
- everything else: RFC 9457 problem details, `application/problem+json`, with the same `code`
  as an extension member, so that a client tells the cause without reading the text.
"""

import json
from http import HTTPStatus

from starlette.responses import JSONResponse, Response

from observability import requests

PROBLEM_JSON = "application/problem+json"

# What a family-independent code is called in OAuth's vocabulary (RFC 6749 section 5.2).
_OAUTH_ERRORS = {"INVALID_INPUT": "invalid_request", "BAD_REQUEST": "invalid_request",
                 "REQUEST_TOO_LARGE": "invalid_request", "NOT_FOUND": "invalid_request",
                 "METHOD_NOT_ALLOWED": "invalid_request"}


def problem(status: int, detail: str, *, code: str | None = None, title: str | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An RFC 9457 problem details response; `code` is an extension member."""
    body: dict[str, object] = {"type": "about:blank", "title": title or HTTPStatus(status).phrase,
                               "status": status, "detail": detail}
    if code is not None:
        body["code"] = code
        requests.note_errors([code])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def graphql_error(status: int, message: str, code: str, *, headers: dict[str, str] | None = None,
                  **extensions: object) -> Response:
    """A request error on /graphql: a GraphQL response with no data and one coded error, and the
    request's id in `extensions.requestId` as an executed operation has it (R91)."""
    body: dict[str, object] = {"data": None, "errors": [
        {"message": message, "extensions": {"code": code, **extensions}}]}
    requests.note_errors([code])
    request_id = requests.current_id()
    if request_id is not None:
        body["extensions"] = {"requestId": request_id}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def oauth_error(status: int, error: str, description: str, *, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def refusal(path: str, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> Response:
    """A refusal before any endpoint ran (a body too large, a control character in the URL), in
    the shape of the family that `path` belongs to."""
    if path == "/graphql" or path.startswith("/graphql/"):
        return graphql_error(status, message, code, headers=headers)
    if path.startswith("/oauth/"):
        return oauth_error(status, _OAUTH_ERRORS.get(code, "invalid_request"), message, headers=headers)
    return problem(status, message, code=code, headers=headers)

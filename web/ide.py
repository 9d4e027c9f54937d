"""GraphiQL, served by bureau itself: the page at GET /graphql and its files at /graphiql/... (R88).

The files are GraphiQL's and React's own builds from the npm registry, installed by `npm ci` in
web/graphiql (scripts/demo, scripts/test and the Dockerfile run it), so that the explorer works
where no CDN can be reached. Only the files named here are served, never the folder.
"""

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from web.problems import problem

HERE = Path(__file__).resolve().parent / "graphiql"
MODULES = HERE / "node_modules"

# The address's name -> the file, and its media type.
ASSETS: dict[str, tuple[Path, str]] = {
    "react.production.min.js": (MODULES / "react/umd/react.production.min.js", "text/javascript"),
    "react-dom.production.min.js": (MODULES / "react-dom/umd/react-dom.production.min.js", "text/javascript"),
    "graphiql.min.js": (MODULES / "graphiql/graphiql.min.js", "text/javascript"),
    "graphiql.min.css": (MODULES / "graphiql/graphiql.min.css", "text/css"),
    "bureau-graphiql.js": (HERE / "bureau-graphiql.js", "text/javascript"),
    "bureau-graphiql.css": (HERE / "bureau-graphiql.css", "text/css"),
}

INSTALL_HINT = "run `npm ci --prefix web/graphiql` (./scripts/demo does it)"

HEADERS = {
    "Cache-Control": "no-store",
    # Scripts and styles only from this server (GraphiQL's editors set inline styles); requests only to it.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL - bureau</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
<link rel="stylesheet" href="/graphiql/bureau-graphiql.css">
</head>
<body>
<p id="bureau-note">Open <b>Headers</b> below and paste the token <code>bureau demo</code> printed after
<code>Bearer</code>: <code>{"Authorization": "Bearer eyJ..."}</code> (the token alone works too).
The schema (docs, completion, checking) loads as soon as the token is there.</p>
<div id="graphiql">Loading GraphiQL...</div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script src="/graphiql/bureau-graphiql.js"></script>
</body>
</html>
"""

MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL - bureau</title></head>
<body><h1>GraphiQL is not installed</h1>
<p>Its files are not on this server: {hint}. The API itself works: POST GraphQL to /graphql.</p>
</body></html>
"""


def missing_assets() -> list[str]:
    return [name for name, (path, _) in ASSETS.items() if not path.is_file()]


def graphiql_page() -> HTMLResponse:
    if missing_assets():
        return HTMLResponse(MISSING.format(hint=INSTALL_HINT), status_code=503, headers=HEADERS)
    return HTMLResponse(PAGE, headers=HEADERS)


async def graphiql_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return problem(404, "No such file.", code="NOT_FOUND")
    path, media_type = ASSETS[name]
    if not path.is_file():
        return problem(404, f"GraphiQL's files are not installed: {INSTALL_HINT}.", code="NOT_FOUND")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600",
                                                               "X-Content-Type-Options": "nosniff"})

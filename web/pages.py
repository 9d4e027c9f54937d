"""Plain HTML pages: no JavaScript, one inline style, never framed, never cached."""

import base64
import hashlib
import html

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f5f5;color:#1a1a1a}"
    "main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #ccc;border-radius:6px}"
    "h1{font-size:1.5rem;margin-top:0}label{display:block;font-weight:600;margin-top:1rem}"
    "input{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid #666;border-radius:4px}"
    "input:focus,button:focus{outline:3px solid #0b57d0;outline-offset:2px}"
    "button{margin-top:1.5rem;margin-right:.5rem;padding:.6rem 1.2rem;font:inherit;border-radius:4px;"
    "border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}"
    "button.secondary{background:#fff;color:#0b57d0}"
    ".error{color:#a50e0e;background:#fce8e6;padding:.75rem;border-radius:4px}"
    ".hint{color:#444;font-size:.9rem;margin:.25rem 0 0}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # No scripts at all; the only style is ours; never framed (clickjacking).
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The addresses of these pages carry secrets (invitation tokens, PKCE challenges).
    "Referrer-Policy": "no-referrer",
}

e = html.escape


def page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    document = (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{e(title)} - bureau</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{e(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(document, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def error_block(message: str | None) -> str:
    return f'<p class="error" role="alert" id="form-error">{e(message)}</p>\n' if message else ""


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">\n'


def field(name: str, label: str, kind: str, *, autocomplete: str, value: str = "", error: bool = False,
          hint: str | None = None) -> str:
    described = " ".join(x for x in (f"{name}-hint" if hint else "", "form-error" if error else "") if x)
    attributes = f' aria-describedby="{described}"' if described else ""
    if error:
        attributes += ' aria-invalid="true"'
    value_attr = f' value="{e(value)}"' if value else ""
    hint_html = f'<p class="hint" id="{name}-hint">{e(hint)}</p>\n' if hint else ""
    return (f'<label for="{name}">{e(label)}</label>\n'
            f'<input id="{name}" name="{name}" type="{kind}" autocomplete="{autocomplete}" required'
            f'{value_attr}{attributes}>\n{hint_html}')


def client_address(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips so that this
    # is the real client's address.
    return request.client.host if request.client else "unknown"


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def wait_text(seconds: int) -> str:
    """How long to wait, in words: the first waits last seconds, so "1 minute" would be wrong by a lot."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

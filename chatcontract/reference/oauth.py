"""``POST /oauth/token``: OAuth2 client credentials (RFC 6749 §4.4).

Any client_id that is a valid user name is a user, with the configured
shared secret; that is what lets a contract suite obtain real tokens for
several users without a separate identity service.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatcontract.reference.services import Services
from chatcontract.reference.tokens import USER_PATTERN, mint_token

__all__ = [
    "TOKEN_PATH",
    "token_endpoint",
]

TOKEN_PATH = "/oauth/token"
# RFC 6749 §5.1: token answers must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, error: str, description: str) -> Response:
    headers = dict(_NO_STORE)
    if status == 401:
        # §5.2: a 401 names the client authentication scheme the endpoint supports.
        headers["WWW-Authenticate"] = 'Basic realm="chat"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic_credentials(header: str | None) -> tuple[str, str] | Response | None:
    """Client id and secret from HTTP Basic (§2.3.1: both form-urlencoded first)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return _error(401, "invalid_client", "malformed Basic credentials")
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return _error(401, "invalid_client", "malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


async def token_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request", "use application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(
            (await request.body()).decode(), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        return _error(400, "invalid_request", "the form is not UTF-8")
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            # §3.2: parameters must not be included more than once.
            return _error(400, "invalid_request", f"repeated parameter {name}")
        form[name] = value
    grant = form.get("grant_type")
    if not grant:
        return _error(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _error(400, "unsupported_grant_type", "only client_credentials is supported")
    basic = _basic_credentials(request.headers.get("authorization"))
    if isinstance(basic, Response):
        return basic
    if basic is not None and ("client_id" in form or "client_secret" in form):
        # §2.3: a client must not use more than one authentication method.
        return _error(400, "invalid_request", "use either Basic or form credentials, not both")
    client_id, secret = (
        basic
        if basic is not None
        else (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
    )
    if not client_id or not secret:
        return _error(401, "invalid_client", "client credentials are required")
    secret_ok = hmac.compare_digest(secret.encode(), services.config.client_secret.encode())
    if not USER_PATTERN.match(client_id) or not secret_ok:
        return _error(401, "invalid_client", "unknown client or wrong secret")
    config = services.config
    return JSONResponse(
        {
            "access_token": mint_token(client_id, config),
            "token_type": "Bearer",
            "expires_in": config.token_ttl_seconds,
        },
        headers=_NO_STORE,
    )

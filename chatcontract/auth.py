"""Where a run's bearer tokens come from.

Four providers implement :class:`chatcontract.context.Credentials`:

* :class:`StaticToken`: one token for one user (a token you already hold);
* :class:`EnvTokens`: per-user tokens from ``CHATCONTRACT_TOKEN`` and
  ``CHATCONTRACT_TOKEN_<USER>``;
* :class:`OAuth2ClientCredentials`: real tokens from the spec's OAuth2
  ``tokenUrl`` (RFC 6749 section 4.4), one client per user, refreshed before
  they expire;
* :class:`Anonymous`: no credentials at all, for an API that declares no
  authentication (its ``token()`` raises :class:`NoCredentialsError`).

:func:`credentials_from_env` picks one. An API whose operations are all open
(no security requirement, or ``security: []``) is checked as :class:`Anonymous`;
one that requires authentication needs credentials configured, else a
one-line :class:`ConfigError` names the variables to set. Only the embedded
reference server (``target_is_reference``) falls back to its built-in users
``alice`` and ``bob`` and public test secret ``reference-secret``.
Secrets come only from the environment or a TOML file named by
``CHATCONTRACT_CONFIG``, never from command-line flags, which end up in shell
history and CI logs. Every secret a provider holds or hands out is reported by
``secrets()`` and, when given, passed to ``on_secret`` the moment it exists, so
the run's redactor knows it before any output is written.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import tomllib
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
import jwt

from chatcontract.errors import ChatContractError, ConfigError
from chatcontract.spec import Operation, Spec

__all__ = [
    "ANONYMOUS_USER",
    "CONFIG_ENV",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_USERS",
    "NO_AUTH_REASON",
    "TOKEN_ENV",
    "Anonymous",
    "ClientCredentials",
    "EnvTokens",
    "NoCredentialsError",
    "OAuth2ClientCredentials",
    "StaticToken",
    "TokenRequestError",
    "credentials_from_env",
    "no_auth_reason",
    "requires_credentials",
    "resolve_token_url",
]

DEFAULT_USERS: tuple[str, ...] = ("alice", "bob")
DEFAULT_CLIENT_SECRET = "reference-secret"
"""The embedded reference server's client secret: public on purpose, it guards a local test
double, and is never offered to any other target."""
ANONYMOUS_USER = "anonymous"
NO_AUTH_REASON = "the API declares no authentication"
"""Why a contract that needs credentials is skipped on an open API (or operation)."""
TOKEN_ENV = "CHATCONTRACT_TOKEN"
CONFIG_ENV = "CHATCONTRACT_CONFIG"
_USERS_ENV = "CHATCONTRACT_USERS"
_USER_ENV = "CHATCONTRACT_USER"
_SECRET_ENV = "CHATCONTRACT_CLIENT_SECRET"
_CLIENT_ID_ENV = "CHATCONTRACT_CLIENT_ID"
_TOKEN_URL_ENV = "CHATCONTRACT_OAUTH_TOKEN_URL"
_SCOPES_ENV = "CHATCONTRACT_OAUTH_SCOPES"
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# A token whose expiry nobody states is assumed short-lived, so it is fetched again soon.
_UNKNOWN_LIFETIME = 300.0

SecretSink = Callable[[str], None]


class TokenRequestError(ChatContractError):
    """No token could be had: the token endpoint refused or did not answer.

    ``status`` is the HTTP status of the refusal, ``None`` when there was no
    answer. The message never contains a secret.
    """

    def __init__(self, message: str, *, status: int | None = None, user: str | None = None):
        super().__init__(message)
        self.status = status
        self.user = user


class NoCredentialsError(TokenRequestError):
    """A token was asked of :class:`Anonymous`: the run has no credentials at all.

    A :class:`TokenRequestError`, so code that already copes with a token it
    cannot get (the inventory, the positive control) copes with this too.
    """


def requires_credentials(spec: Spec) -> bool:
    """Whether any operation of ``spec`` requires authentication."""
    return any(not op.is_public for op in spec.operations)


def no_auth_reason(op: Operation | None = None) -> str:
    """The skip reason of a contract that needs credentials ``op`` (or the API) does not take."""
    return NO_AUTH_REASON if op is None else f"{NO_AUTH_REASON} for {op.label}"


def _env_suffix(user: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", user).upper()


def _check_users(users: Sequence[str]) -> tuple[str, ...]:
    if not users:
        raise ConfigError("at least one user is required")
    for user in users:
        if not _USER_NAME.match(user):
            raise ConfigError(f"invalid user name {user!r}")
    if len(set(users)) != len(users):
        raise ConfigError(f"duplicate user names in {', '.join(users)}")
    return tuple(users)


class _Sinks:
    """Registered secrets plus the callbacks that want each new one."""

    def __init__(self, on_secret: SecretSink | None) -> None:
        self._known: set[str] = set()
        self._sinks: list[SecretSink] = [on_secret] if on_secret else []

    def add(self, secret: str) -> None:
        if secret in self._known:
            return
        self._known.add(secret)
        for sink in self._sinks:
            sink(secret)

    def watch(self, sink: SecretSink) -> None:
        self._sinks.append(sink)
        for secret in self._known:
            sink(secret)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._known))


class StaticToken:
    """One bearer token you already hold, for one user."""

    def __init__(self, token: str, user: str = "default", *, on_secret: SecretSink | None = None):
        if not token.strip():
            raise ConfigError("the static token is empty")
        self._user = _check_users([user])[0]
        self._token = token.strip()
        self._secrets = _Sinks(on_secret)
        self._secrets.add(self._token)

    @property
    def users(self) -> tuple[str, ...]:
        return (self._user,)

    async def token(self, user: str | None = None) -> str:
        if user not in (None, self._user):
            raise ConfigError(f"no token for user {user!r}: the static token is {self._user!r}'s")
        return self._token

    def secrets(self) -> Iterable[str]:
        return list(self._secrets)

    def watch(self, sink: SecretSink) -> None:
        """Call ``sink`` with every secret, now and whenever a new one appears."""
        self._secrets.watch(sink)


class EnvTokens:
    """Fixed tokens for named users, in the order given (the first is the default user)."""

    def __init__(self, tokens: Mapping[str, str], *, on_secret: SecretSink | None = None):
        self._users = _check_users(list(tokens))
        self._tokens = {user: value.strip() for user, value in tokens.items()}
        empty = [user for user, value in self._tokens.items() if not value]
        if empty:
            raise ConfigError(f"empty token for {', '.join(empty)}")
        self._secrets = _Sinks(on_secret)
        for value in self._tokens.values():
            self._secrets.add(value)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, on_secret: SecretSink | None = None
    ) -> EnvTokens | None:
        """``CHATCONTRACT_TOKEN`` (user ``CHATCONTRACT_USER``, default ``default``) and
        ``CHATCONTRACT_TOKEN_<USER>``; ``None`` when none is set."""
        tokens: dict[str, str] = {}
        if env.get(TOKEN_ENV):
            tokens[env.get(_USER_ENV) or "default"] = env[TOKEN_ENV]
        prefix = TOKEN_ENV + "_"
        for name in sorted(env):
            if name.startswith(prefix) and env[name]:
                user = name.removeprefix(prefix).lower()
                if user and user not in tokens:
                    tokens[user] = env[name]
        return cls(tokens, on_secret=on_secret) if tokens else None

    @property
    def users(self) -> tuple[str, ...]:
        return self._users

    async def token(self, user: str | None = None) -> str:
        chosen = self._users[0] if user is None else user
        try:
            return self._tokens[chosen]
        except KeyError:
            raise ConfigError(
                f"no token for user {chosen!r}; set {TOKEN_ENV}_{_env_suffix(chosen)}"
            ) from None

    def secrets(self) -> Iterable[str]:
        return list(self._secrets)

    def watch(self, sink: SecretSink) -> None:
        """Call ``sink`` with every secret, now and whenever a new one appears."""
        self._secrets.watch(sink)


class Anonymous:
    """No credentials: the provider of a run against an API that declares no authentication.

    It has one user (``anonymous``) so that code reading ``users[0]`` works;
    asking it for a token raises :class:`NoCredentialsError`.
    """

    @property
    def users(self) -> tuple[str, ...]:
        return (ANONYMOUS_USER,)

    async def token(self, user: str | None = None) -> str:
        raise NoCredentialsError(
            "no token: the run has no credentials (the spec declares no authentication); "
            f"set {TOKEN_ENV} or {_SECRET_ENV} to check protected operations",
            user=user,
        )

    def secrets(self) -> Iterable[str]:
        return []

    def watch(self, sink: SecretSink) -> None:
        """Nothing to watch: there is never a secret."""

    def __repr__(self) -> str:
        return "Anonymous()"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """One OAuth2 client: the identity a user's tokens are issued to."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        # Never let a secret reach a log line through a repr.
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class _Issued:
    token: str
    expires_at: float
    lifetime: float


class OAuth2ClientCredentials:
    """Tokens from an OAuth2 token endpoint, one client per user.

    A cached token is handed out until ``skew`` seconds before it expires
    (at most half its lifetime, so short-lived tokens are not refetched on
    every call). The expiry comes from ``expires_in``, else from the JWT's
    ``exp`` claim. Each fetch has one overall deadline of
    ``connect_timeout + read_timeout`` and is never retried: a refusal is
    evidence the positive control must see, not noise to paper over.
    """

    def __init__(
        self,
        token_url: str,
        clients: Mapping[str, ClientCredentials],
        *,
        scopes: Sequence[str] = (),
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        skew: float = 30.0,
        auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post",
        on_secret: SecretSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if urlsplit(token_url).scheme not in ("http", "https"):
            raise ConfigError(f"the token URL must be absolute http(s), got {token_url!r}")
        self._users = _check_users(list(clients))
        self.token_url = token_url
        self._clients = dict(clients)
        self._scopes = tuple(scopes)
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._deadline = connect_timeout + read_timeout
        self._skew = skew
        self._auth_method = auth_method
        self._clock = clock
        self._issued: dict[str, _Issued] = {}
        # asyncio locks belong to one loop; a provider may serve several (tests, pytest plugin).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
        self._locks = weakref.WeakKeyDictionary()
        self._secrets = _Sinks(on_secret)
        for client in self._clients.values():
            self._secrets.add(client.client_secret)

    @property
    def users(self) -> tuple[str, ...]:
        return self._users

    def secrets(self) -> Iterable[str]:
        return list(self._secrets)

    def watch(self, sink: SecretSink) -> None:
        """Call ``sink`` with every secret, now and whenever a new one appears."""
        self._secrets.watch(sink)

    def invalidate(self, user: str | None = None) -> None:
        """Forget cached tokens (of ``user``, or all), so the next call fetches anew."""
        if user is None:
            self._issued.clear()
        else:
            self._issued.pop(user, None)

    async def token(self, user: str | None = None) -> str:
        chosen = self._users[0] if user is None else user
        if chosen not in self._clients:
            raise ConfigError(f"no OAuth2 client for user {chosen!r}")
        fresh = self._fresh(chosen)
        if fresh is not None:
            return fresh
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, {}).setdefault(chosen, asyncio.Lock())
        async with lock:
            # Another task may have fetched it while this one waited for the lock.
            fresh = self._fresh(chosen)
            if fresh is not None:
                return fresh
            issued = await self._fetch(chosen)
            self._issued[chosen] = issued
            return issued.token

    def _fresh(self, user: str) -> str | None:
        issued = self._issued.get(user)
        if issued is None:
            return None
        margin = min(self._skew, issued.lifetime / 2)
        return issued.token if self._clock() < issued.expires_at - margin else None

    async def _fetch(self, user: str) -> _Issued:
        client = self._clients[user]
        form = {"grant_type": "client_credentials"}
        if self._scopes:
            form["scope"] = " ".join(self._scopes)
        extra: dict[str, Any] = {}
        if self._auth_method == "client_secret_basic":
            extra["auth"] = httpx.BasicAuth(client.client_id, client.client_secret)
        else:
            form["client_id"] = client.client_id
            form["client_secret"] = client.client_secret
        started = self._clock()
        try:
            async with (
                asyncio.timeout(self._deadline),
                httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http,
            ):
                response = await http.post(
                    self.token_url, data=form, headers={"Accept": "application/json"}, **extra
                )
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            raise TokenRequestError(
                f"token endpoint {self.token_url} did not answer for {user}: {type(exc).__name__}",
                user=user,
            ) from None
        return self._parse(user, response, started)

    def _parse(self, user: str, response: httpx.Response, started: float) -> _Issued:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if status != 200:
            error = body.get("error") if isinstance(body, dict) else None
            detail = f" ({error})" if isinstance(error, str) and len(error) < 64 else ""
            raise TokenRequestError(
                f"token endpoint answered {status}{detail} for {user}", status=status, user=user
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenRequestError(
                f"token endpoint answered 200 without an access_token for {user}",
                status=status,
                user=user,
            )
        # Register before anything else can go wrong, so no later message can leak it.
        self._secrets.add(token)
        kind = body.get("token_type", "Bearer")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise TokenRequestError(
                f"token endpoint issued a {kind!r} token for {user}, not a bearer token",
                status=status,
                user=user,
            )
        lifetime = _lifetime(body.get("expires_in"), token, started)
        return _Issued(token=token, expires_at=started + lifetime, lifetime=lifetime)


def _lifetime(expires_in: Any, token: str, issued_at: float) -> float:
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return float(expires_in)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return _UNKNOWN_LIFETIME
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and exp > issued_at:
        return float(exp) - issued_at
    return _UNKNOWN_LIFETIME


def resolve_token_url(token_url: str, base_url: str) -> str:
    """An absolute token URL; a path is taken relative to the base URL, prefix included.

    ``/oauth/token`` against ``https://api.example.com/v1`` gives
    ``https://api.example.com/v1/oauth/token``: the spec's paths are relative
    to the server URL too, and an API mounted under a prefix keeps its token
    endpoint beside it.
    """
    if urlsplit(token_url).scheme:
        return token_url
    if token_url.startswith("/"):
        return base_url.rstrip("/") + token_url
    return urljoin(base_url.rstrip("/") + "/", token_url)


def _read_config(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {CONFIG_ENV} file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    auth = data.get("auth", {})
    if not isinstance(auth, dict):
        raise ConfigError(f"{path}: [auth] must be a table")
    return auth


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where} must be a list of strings")


def _table(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def credentials_from_env(
    spec: Spec,
    base_url: str,
    env: Mapping[str, str] | None = None,
    *,
    target_is_reference: bool = False,
    on_secret: SecretSink | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
) -> EnvTokens | OAuth2ClientCredentials | Anonymous:
    """Choose the credential provider from the environment (and ``CHATCONTRACT_CONFIG``).

    An API none of whose operations requires authentication gets
    :class:`Anonymous`, whatever is set. Otherwise fixed tokens win:
    ``CHATCONTRACT_TOKEN`` / ``CHATCONTRACT_TOKEN_<USER>`` (or ``[auth.tokens]``
    in the config file) give :class:`EnvTokens`. Then OAuth2 client
    credentials against the spec's ``tokenUrl`` (``CHATCONTRACT_OAUTH_TOKEN_URL``
    overrides it), for the users in ``CHATCONTRACT_USERS`` (default
    ``alice,bob``); each user's client id is ``CHATCONTRACT_CLIENT_ID_<USER>``
    or the user name, its secret ``CHATCONTRACT_CLIENT_SECRET_<USER>``, else
    ``CHATCONTRACT_CLIENT_SECRET``. Only with ``target_is_reference`` (the
    embedded reference server) does a missing secret fall back to the
    reference's public test secret; for any other target a missing secret is a
    :class:`ConfigError` naming the variables to set. Environment variables
    override the file. The config file's ``[auth]`` table takes ``users``,
    ``client_secret``, ``token_url``, ``scopes``, ``[auth.tokens]`` (user =
    token) and ``[auth.clients.<user>]`` (``client_id``, ``client_secret``).
    """
    if not requires_credentials(spec):
        return Anonymous()
    env = os.environ if env is None else env
    file = _read_config(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else {}
    tokens = EnvTokens.from_env(env, on_secret=on_secret)
    if tokens is not None:
        return tokens
    file_tokens = _table(file.get("tokens"), "[auth.tokens]")
    if file_tokens:
        if not all(isinstance(v, str) for v in file_tokens.values()):
            raise ConfigError("[auth.tokens] values must be strings")
        return EnvTokens(file_tokens, on_secret=on_secret)

    token_url = env.get(_TOKEN_URL_ENV) or file.get("token_url") or spec.token_url
    if not isinstance(token_url, str) or not token_url:
        raise ConfigError(
            "no credentials: the spec requires authentication and declares no OAuth2 tokenUrl; "
            f"set {TOKEN_ENV} (or {TOKEN_ENV}_<USER>), or {_TOKEN_URL_ENV} and {_SECRET_ENV}"
        )
    if env.get(_USERS_ENV):
        users = _str_list(env[_USERS_ENV], _USERS_ENV)
    elif "users" in file:
        users = _str_list(file["users"], "[auth] users")
    else:
        users = list(DEFAULT_USERS)
    scopes = _str_list(env.get(_SCOPES_ENV) or file.get("scopes") or [], "scopes")
    fallback = DEFAULT_CLIENT_SECRET if target_is_reference else None
    shared_secret = env.get(_SECRET_ENV) or file.get("client_secret") or fallback
    file_clients = _table(file.get("clients"), "[auth.clients]")
    clients: dict[str, ClientCredentials] = {}
    missing: list[str] = []
    for user in _check_users(users):
        own = _table(file_clients.get(user), f"[auth.clients.{user}]")
        suffix = _env_suffix(user)
        client_id = env.get(f"{_CLIENT_ID_ENV}_{suffix}") or own.get("client_id") or user
        secret = env.get(f"{_SECRET_ENV}_{suffix}") or own.get("client_secret") or shared_secret
        if secret is None:
            missing.append(user)
            continue
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise ConfigError(f"[auth.clients.{user}] values must be strings")
        clients[user] = ClientCredentials(client_id, secret)
    if missing:
        raise ConfigError(_missing_secrets(missing, clients, token_url))
    return OAuth2ClientCredentials(
        resolve_token_url(token_url, base_url),
        clients,
        scopes=scopes,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        on_secret=on_secret,
    )


def _missing_secrets(missing: Sequence[str], found: Mapping[str, Any], token_url: str) -> str:
    """One line: which variables give the users without a client secret one."""
    if not found:
        return (
            "no credentials: the spec requires authentication; set "
            f"{TOKEN_ENV} (or {TOKEN_ENV}_<USER>), or {_SECRET_ENV} for OAuth2 client "
            f"credentials against {token_url} (or a {CONFIG_ENV} file)"
        )
    wanted = ", ".join(f"{_SECRET_ENV}_{_env_suffix(user)}" for user in missing)
    return (
        f"no client secret for {', '.join(missing)}: set {wanted} or {_SECRET_ENV} "
        f"(users come from {_USERS_ENV})"
    )

"""Credential providers: static, environment, and OAuth2 client credentials against real servers."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatcontract.auth import (
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USERS,
    Anonymous,
    ClientCredentials,
    EnvTokens,
    NoCredentialsError,
    OAuth2ClientCredentials,
    StaticToken,
    TokenRequestError,
    credentials_from_env,
    resolve_token_url,
)
from chatcontract.context import Credentials
from chatcontract.errors import ConfigError
from chatcontract.reference.server import RunningReference, running_reference
from chatcontract.spec import load_spec

from .rest.servers import closed_port_url, serving

SPEC = load_spec()


@pytest.fixture(scope="module")
def reference() -> Iterator[RunningReference]:
    with running_reference() as server:
        yield server


class TokenServer:
    """A token endpoint whose answer a test chooses, counting the requests it gets."""

    def __init__(self) -> None:
        self.hits = 0
        self.answer: dict[str, Any] = {}
        self.status = 200
        self.delay = 0.0

    async def endpoint(self, request: Request) -> Response:
        self.hits += 1
        await asyncio.sleep(self.delay)
        return JSONResponse(self.answer, status_code=self.status)


@pytest.fixture
def token_server() -> Iterator[tuple[TokenServer, str]]:
    state = TokenServer()
    app = Starlette(routes=[Route("/oauth/token", state.endpoint, methods=["POST"])])
    with serving(app) as url:
        yield state, url + "/oauth/token"


def oauth(url: str, **kwargs: Any) -> OAuth2ClientCredentials:
    clients = {u: ClientCredentials(u, "reference-secret") for u in ("alice", "bob")}
    return OAuth2ClientCredentials(url, clients, **kwargs)


def test_every_provider_implements_the_credentials_protocol(reference: RunningReference):
    providers = [
        StaticToken("abc-token"),
        EnvTokens({"alice": "t1", "bob": "t2"}),
        oauth(reference.url + "/oauth/token"),
    ]
    assert all(isinstance(p, Credentials) for p in providers)


def test_static_token_serves_one_user_and_reports_its_secret() -> None:
    seen: list[str] = []
    provider = StaticToken("static-token-value", "carol", on_secret=seen.append)
    assert provider.users == ("carol",)
    assert asyncio.run(provider.token()) == "static-token-value"
    assert list(provider.secrets()) == ["static-token-value"] == seen
    with pytest.raises(ConfigError, match="dave"):
        asyncio.run(provider.token("dave"))


def test_env_tokens_name_users_by_variable_and_keep_the_default_first() -> None:
    env = {
        "CHATCONTRACT_TOKEN": "tok-main",
        "CHATCONTRACT_USER": "alice",
        "CHATCONTRACT_TOKEN_BOB": "tok-bob",
        "CHATCONTRACT_TOKEN_CI_BOT": "tok-ci",
    }
    provider = EnvTokens.from_env(env)
    assert provider is not None
    assert provider.users == ("alice", "bob", "ci_bot")
    assert asyncio.run(provider.token()) == "tok-main"
    assert asyncio.run(provider.token("bob")) == "tok-bob"
    with pytest.raises(ConfigError, match="CHATCONTRACT_TOKEN_ERIN"):
        asyncio.run(provider.token("erin"))
    assert EnvTokens.from_env({}) is None


def test_oauth2_gets_distinct_tokens_per_user_and_caches_them(reference: RunningReference):
    seen: list[str] = []
    provider = oauth(reference.url + "/oauth/token", on_secret=seen.append)

    async def scenario() -> tuple[str, str, str]:
        return await provider.token(), await provider.token("bob"), await provider.token("alice")

    alice, bob, again = asyncio.run(scenario())
    assert alice != bob
    assert again == alice
    assert jwt.decode(alice, options={"verify_signature": False})["sub"] == "alice"
    assert {alice, bob, "reference-secret"} <= set(provider.secrets())
    assert alice in seen
    assert bob in seen


def test_oauth2_refreshes_a_token_close_to_its_expiry(reference: RunningReference) -> None:
    now = [time.time()]
    provider = oauth(reference.url + "/oauth/token", skew=30, clock=lambda: now[0])
    first = asyncio.run(provider.token())
    now[0] += 3600 - 31  # the reference's tokens live an hour
    assert asyncio.run(provider.token()) == first
    now[0] += 2  # inside the skew: refresh before the server would refuse it
    assert asyncio.run(provider.token()) != first


def test_oauth2_basic_client_authentication_works(reference: RunningReference) -> None:
    provider = oauth(reference.url + "/oauth/token", auth_method="client_secret_basic")
    assert asyncio.run(provider.token("bob"))


def test_a_refused_client_is_a_token_error_with_the_status_and_no_secret(
    reference: RunningReference,
) -> None:
    clients = {"alice": ClientCredentials("alice", "a-wrong-client-secret")}
    provider = OAuth2ClientCredentials(reference.url + "/oauth/token", clients)
    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(provider.token())
    assert caught.value.status == 401
    assert "invalid_client" in str(caught.value)
    assert "a-wrong-client-secret" not in str(caught.value)
    assert "a-wrong-client-secret" not in repr(clients["alice"])


def test_an_unreachable_token_endpoint_fails_fast_without_a_status() -> None:
    provider = oauth(closed_port_url() + "/oauth/token", connect_timeout=1, read_timeout=1)
    started = time.monotonic()
    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(provider.token())
    assert caught.value.status is None
    assert time.monotonic() - started < 3


def test_a_token_endpoint_that_hangs_meets_the_deadline(
    token_server: tuple[TokenServer, str],
) -> None:
    state, url = token_server
    state.delay = 1.5
    provider = oauth(url, connect_timeout=0.3, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TokenRequestError):
        asyncio.run(provider.token())
    assert time.monotonic() - started < 1.2


def test_without_expires_in_the_jwt_exp_claim_sets_the_lifetime(
    token_server: tuple[TokenServer, str],
) -> None:
    state, url = token_server
    issued = time.time()
    token = jwt.encode({"sub": "alice", "exp": int(issued) + 120}, "k" * 32, algorithm="HS256")
    state.answer = {"access_token": token, "token_type": "bearer"}
    now = [issued]
    provider = oauth(url, skew=30, clock=lambda: now[0])
    assert asyncio.run(provider.token()) == token
    now[0] += 85
    asyncio.run(provider.token())
    assert state.hits == 1
    now[0] += 10  # within 30 s of exp
    asyncio.run(provider.token())
    assert state.hits == 2


def test_concurrent_callers_share_one_fetch(token_server: tuple[TokenServer, str]) -> None:
    state, url = token_server
    state.answer = {"access_token": "opaque-token-1", "token_type": "Bearer", "expires_in": 60}
    state.delay = 0.1
    provider = oauth(url)

    async def many() -> set[str]:
        return set(await asyncio.gather(*(provider.token() for _ in range(10))))

    assert asyncio.run(many()) == {"opaque-token-1"}
    assert state.hits == 1


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ({"token_type": "Bearer"}, "without an access_token"),
        ({"access_token": "mac-token-1", "token_type": "mac"}, "not a bearer token"),
    ],
)
def test_unusable_token_answers_are_token_errors(
    token_server: tuple[TokenServer, str], answer: dict[str, Any], match: str
) -> None:
    state, url = token_server
    state.answer = answer
    with pytest.raises(TokenRequestError, match=match):
        asyncio.run(oauth(url).token())


def test_defaults_match_the_reference_server(reference: RunningReference) -> None:
    provider = credentials_from_env(SPEC, reference.url, env={}, target_is_reference=True)
    assert isinstance(provider, OAuth2ClientCredentials)
    assert provider.users == DEFAULT_USERS
    assert provider.token_url == reference.url + "/oauth/token"
    assert asyncio.run(provider.token("bob"))


def test_the_reference_secret_is_never_offered_to_another_target() -> None:
    with pytest.raises(ConfigError) as raised:
        credentials_from_env(SPEC, "https://staging.example.com", env={})
    message = str(raised.value)
    assert "\n" not in message
    assert "CHATCONTRACT_TOKEN" in message
    assert "CHATCONTRACT_CLIENT_SECRET" in message
    assert DEFAULT_CLIENT_SECRET not in message
    # One user configured, one not: the missing one is named with its variable.
    env = {"CHATCONTRACT_USERS": "ann,ben", "CHATCONTRACT_CLIENT_SECRET_ANN": "ann-secret"}
    with pytest.raises(ConfigError, match="no client secret for ben: set CHATCONTRACT_CLIENT_"):
        credentials_from_env(SPEC, "https://staging.example.com", env=env)


def test_an_open_api_gets_anonymous_credentials() -> None:
    operations = tuple(dataclasses.replace(op, security=()) for op in SPEC.operations)
    open_spec = dataclasses.replace(SPEC, operations=operations)
    provider = credentials_from_env(open_spec, "http://api", env={"CHATCONTRACT_TOKEN": "t"})
    assert isinstance(provider, Anonymous)
    assert isinstance(provider, Credentials)
    assert provider.users == ("anonymous",)
    assert list(provider.secrets()) == []
    with pytest.raises(NoCredentialsError, match="no credentials"):
        asyncio.run(provider.token())


def test_fixed_tokens_from_the_environment_win_over_oauth2() -> None:
    provider = credentials_from_env(SPEC, "http://h", env={"CHATCONTRACT_TOKEN_ALICE": "tok-a"})
    assert isinstance(provider, EnvTokens)
    assert provider.users == ("alice",)


def test_per_user_secrets_users_and_token_url_come_from_env() -> None:
    env = {
        "CHATCONTRACT_USERS": "ann, ben",
        "CHATCONTRACT_CLIENT_SECRET": "shared-secret",
        "CHATCONTRACT_CLIENT_SECRET_BEN": "ben-secret",
        "CHATCONTRACT_CLIENT_ID_ANN": "client-ann",
        "CHATCONTRACT_OAUTH_TOKEN_URL": "https://id.example.com/token",
    }
    provider = credentials_from_env(SPEC, "http://api", env=env)
    assert isinstance(provider, OAuth2ClientCredentials)
    assert provider.users == ("ann", "ben")
    assert provider.token_url == "https://id.example.com/token"
    assert {"shared-secret", "ben-secret"} == set(provider.secrets())


def test_a_config_file_supplies_secrets_and_env_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "chatcontract.toml"
    config.write_text(
        '[auth]\nusers = ["alice", "bob"]\nclient_secret = "file-secret"\n'
        '[auth.clients.bob]\nclient_secret = "bob-file-secret"\n'
    )
    env = {"CHATCONTRACT_CONFIG": str(config)}
    provider = credentials_from_env(SPEC, "http://api", env=env)
    assert set(provider.secrets()) == {"file-secret", "bob-file-secret"}
    env["CHATCONTRACT_CLIENT_SECRET"] = "env-secret"
    provider = credentials_from_env(SPEC, "http://api", env=env)
    assert set(provider.secrets()) == {"env-secret", "bob-file-secret"}


def test_config_file_tokens_and_bad_files(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[auth.tokens]\nalice = "file-token-a"\nbob = "file-token-b"\n')
    provider = credentials_from_env(SPEC, "http://api", env={"CHATCONTRACT_CONFIG": str(config)})
    assert isinstance(provider, EnvTokens)
    assert provider.users == ("alice", "bob")
    config.write_text("[auth\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        credentials_from_env(SPEC, "http://api", env={"CHATCONTRACT_CONFIG": str(config)})
    with pytest.raises(ConfigError, match="cannot read"):
        credentials_from_env(SPEC, "http://api", env={"CHATCONTRACT_CONFIG": str(config) + "x"})


def test_a_spec_without_token_url_needs_tokens() -> None:
    no_oauth = dataclasses.replace(SPEC, token_url=None)
    with pytest.raises(ConfigError, match="CHATCONTRACT_TOKEN"):
        credentials_from_env(no_oauth, "http://api", env={}, target_is_reference=True)


@pytest.mark.parametrize(
    ("token_url", "base", "expected"),
    [
        ("/oauth/token", "http://h:8000", "http://h:8000/oauth/token"),
        ("/oauth/token", "https://api.example.com/v1/", "https://api.example.com/v1/oauth/token"),
        ("oauth/token", "https://api.example.com/v1", "https://api.example.com/v1/oauth/token"),
        ("https://id.example.com/t", "http://h", "https://id.example.com/t"),
    ],
)
def test_token_urls_resolve_against_the_base_url(token_url: str, base: str, expected: str) -> None:
    assert resolve_token_url(token_url, base) == expected

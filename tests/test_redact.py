"""The Redactor: every credential shape goes, every planted value in every encoding goes,
ordinary text stays, and redacting twice changes nothing."""

from __future__ import annotations

import base64
import json
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml

from chatcontract.redact import DEFAULT_SUBPROTOCOL_PREFIXES, PLACEHOLDER, Redactor

R = PLACEHOLDER
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhbGljZSIsImp0aSI6InBsYW50ZWQwanRpIn0."
    "c2lnbmF0dXJlLW9mLXRoZS1wbGFudGVkLXRva2Vu"
)
OPAQUE = "opq_7Hc2kLq9ZxW4mN0pR5tV"  # an opaque token: no JWT shape to fall back on


def redact(text: str, *secrets: str) -> str:
    out = Redactor(secrets)(text)
    assert Redactor(secrets)(out) == out, "redacting twice must change nothing"
    return out


def _b64_runs(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9+/_=-]{4,}", text)


def _recoverable(secret: str, text: str) -> bool:
    """Whether any base64 run in ``text``, decoded at any alignment, still holds ``secret``."""
    needle = secret.encode()
    for run in _b64_runs(text):
        for start in range(4):
            chunk = run[start:].rstrip("=")
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    if needle in decode(chunk + "=" * (-len(chunk) % 4)):
                        return True
                except ValueError:
                    continue
    return False


# ---------------------------------------------------------------- userinfo in URLs
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("against http://bob:hunter2@127.0.0.1:8000", f"against http://{R}@127.0.0.1:8000"),
        ("https://bob:s3cret@api.example.com/v1/x", f"https://{R}@api.example.com/v1/x"),
        ("'ws://bob:s3cret@127.0.0.1:9/ws'", f"'ws://{R}@127.0.0.1:9/ws'"),
        ("wss://bob:s3cret@chat.example.com/ws?x=1", f"wss://{R}@chat.example.com/ws?x=1"),
        ("postgres://app:pw@db:5432/chat", f"postgres://{R}@db:5432/chat"),
        ("git clone https://ghp_tokenAsUser123@github.com/o/r", f"https://{R}@github.com/o/r"),
        ("http://bob:p@ss@h.example/x", f"http://{R}@h.example/x"),  # an unencoded '@'
        ("http://bob:Pl%40nted%2F@[::1]:8000/", f"http://{R}@[::1]:8000/"),
        ('{"url": "https://u:p4ss@h/x"}', f'{{"url": "https://{R}@h/x"}}'),
        (
            "next=https%3A%2F%2Fbob%3As3cret%40h.example%2Fx",
            f"next=https%3A%2F%2F{R}%40h.example%2Fx",
        ),
    ],
)
def test_userinfo_is_redacted_in_urls_of_any_scheme(text: str, expected: str) -> None:
    assert expected in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8000/api/threads/{thread_id}",
        "write to alice@example.com",
        "https://h.example/users/@alice and http://h.example?e=a@b.c",
        "http://h.example#frag@x",
        "mailto:alice@example.com",
    ],
)
def test_urls_without_userinfo_and_addresses_survive(text: str) -> None:
    assert redact(text) == text


def test_add_url_registers_the_password_in_every_form_it_may_come_back_in() -> None:
    password = "Pl@nted/Passw0rd!"
    url = f"http://planteduser:{quote(password, safe='')}@127.0.0.1:8000/prefix"
    redactor = Redactor()
    redactor.add_url(url)
    basic = base64.b64encode(f"planteduser:{password}".encode()).decode()
    echoes = {
        "decoded": f"login failed for {password}",
        "url-encoded": f"x={quote(password, safe='')}",
        "form-encoded": f"x={quote_plus(password)}",
        "json": json.dumps({"echo": password}),
        "basic header echoed": f"you sent {basic} (Basic)",
        "user:password": f"credentials planteduser:{password} rejected",
        "base64 of the password": base64.b64encode(password.encode()).decode(),
    }
    for form, text in echoes.items():
        out = redactor(text)
        assert "Passw0rd" not in out, form
        assert not _recoverable(password, out), form
        assert basic not in out, form


def test_add_url_registers_a_token_user_and_secret_query_values() -> None:
    redactor = Redactor()
    redactor.add_url(
        "https://tok_UserToken99@h.example/x?sig=AbC123%2Bsig&page=123456#access_token=frag1234"
    )
    out = redactor("echo tok_UserToken99 / AbC123+sig / AbC123%2Bsig / frag1234 / page 123456")
    assert out == f"echo {R} / {R} / {R} / {R} / page 123456"


def test_add_url_never_fails_and_short_passwords_are_not_words_to_redact() -> None:
    redactor = Redactor()
    redactor.add_url("http://[::1")  # unparseable: nothing to take, no exception
    redactor.add_url("http://bob:pw@h.example")
    # "pw" alone would redact ordinary words; "bob:pw" and its Basic form are long enough
    assert redactor("pwd pw") == "pwd pw"
    assert redactor("sent Ym9iOnB3 and bob:pw") == f"sent {R} and {R}"


# ---------------------------------------------------------------- Authorization
CREDENTIALS = {
    "Bearer": "Bearer abc.DEF-123_tok",
    "Basic": "Basic Ym9iOmh1bnRlcjI=",
    "Token": "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
    "Digest": 'Digest username="bob", realm="r", nonce="n0nce", response="6629fae49393a053"',
    "ApiKey": "ApiKey k-3f9a8b7c6d5e",
    "custom": "Custom Zm9vYmFyYmF6MTIz",
}
SECRET_PARTS = ("abc.DEF", "Ym9iOmh1bnRlcjI", "9944b0", "6629fae", "n0nce", "k-3f9a", "Zm9vYmFy")


def _shapes(name: str, value: str) -> dict[str, str]:
    return {
        "curl single quotes": f"curl -X GET -H '{name}: {value}' http://h/api",
        "curl double quotes": f'curl -H "{name}: {value.replace(chr(34), "")}" http://h/api',
        "dict repr": repr({name: value, "Accept": "application/json"}),
        "json": json.dumps({name.lower(): value}),
        "escaped json": json.dumps(json.dumps({name: value})),
        "tuple repr": repr([(name, value)]),
        "raw line": f"> GET /api HTTP/1.1\n{name}: {value}\nAccept: */*",
        "inline": f"handshake GET ws://h/ws | {name}: {value} | Origin: https://a.example",
    }


@pytest.mark.parametrize("scheme", sorted(CREDENTIALS))
@pytest.mark.parametrize("header", ["Authorization", "Proxy-Authorization", "authorization"])
def test_authorization_values_go_in_every_textual_shape(scheme: str, header: str) -> None:
    for shape, text in _shapes(header, CREDENTIALS[scheme]).items():
        out = redact(text)
        assert R in out, shape
        for part in SECRET_PARTS:
            assert part not in out, (shape, out)
        if scheme != "custom":  # the scheme stays: it says what kind of credential went
            flat = re.sub(r"[\\\"']", "", out).replace(", ", ": ").lower()
            assert f"{header}: {scheme} {R}".lower() in flat, (shape, out)


def test_shell_variables_and_placeholders_keep_repros_runnable() -> None:
    repro = (
        'curl -X GET -H "Authorization: Bearer $CHATCONTRACT_TOKEN" http://h/api\n'
        "websocat -H 'Authorization: Bearer $CHATCONTRACT_TOKEN' 'ws://h/ws?token=$CHATCONTRACT_TOKEN'\n"
        'websocat --protocol "jwt-auth, jwt.$(printf %s $CHATCONTRACT_TOKEN | basenc --base64url)"'
        " -H 'Cookie: token=$CHATCONTRACT_TOKEN' --user=$USER:$PASS ws://h/ws"
    )
    assert redact(repro) == repro


def test_a_deliberately_invalid_token_in_a_repro_is_masked_too() -> None:
    line = "curl -X GET -H 'Authorization: Bearer not-a-real-token-123' http://h/api/agents"
    assert redact(line) == f"curl -X GET -H 'Authorization: Bearer {R}' http://h/api/agents"


def test_curl_user_and_cookie_flags() -> None:
    out = redact("curl -u client:s3cr3t -b 'sid=abc123; theme=dark' --user 'a:b' http://h")
    assert out == f"curl -u {R} -b 'sid={R}; theme={R}' --user '{R}' http://h"
    assert redact("curl -b cookies.txt http://h") == "curl -b cookies.txt http://h"


# ---------------------------------------------------------------- cookies
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cookie: session=abc123; theme=dark", f"Cookie: session={R}; theme={R}"),
        (
            "Set-Cookie: sid=s3cr3t; Path=/; HttpOnly; Max-Age=3600; SameSite=Lax",
            f"Set-Cookie: sid={R}; Path=/; HttpOnly; Max-Age=3600; SameSite=Lax",
        ),
        ("-H 'Cookie: token=eyJhbGc.x.y; lang=en'", f"-H 'Cookie: token={R}; lang={R}'"),
        ("{'Cookie': 'sid=abc; csrftoken=xyz'}", f"{{'Cookie': 'sid={R}; csrftoken={R}'}}"),
        ('{"set-cookie": "sid=abc; Secure"}', f'{{"set-cookie": "sid={R}; Secure"}}'),
        ("[('cookie', 'sid=abc')]", f"[('cookie', 'sid={R}')]"),
        (
            "handshake GET ws://h | Cookie: token=abc123 | Origin: o",
            f"Cookie: token={R} | Origin: o",
        ),
    ],
)
def test_cookie_values_go_and_names_stay(text: str, expected: str) -> None:
    assert expected in redact(text)


# ---------------------------------------------------------------- query strings and forms
_PARAMETER_NAMES = (
    "token access_token refresh_token id_token api_key apikey api-key key sig signature auth "
    "session password secret client_secret code jwt X-Amz-Signature"
)
SECRET_PARAMETERS = _PARAMETER_NAMES.split()


@pytest.mark.parametrize("name", SECRET_PARAMETERS)
def test_secret_query_parameters_keep_their_name(name: str) -> None:
    url = f"wss://h.example/ws?page=2&{name}=Zx9%2Bvalue_42&lang=en"
    assert redact(url) == f"wss://h.example/ws?page=2&{name}={R}&lang=en"


def test_forms_json_escaped_urls_and_reprs() -> None:
    form = "grant_type=client_credentials&client_id=alice&client_secret=reference-secret"
    assert redact(form) == f"grant_type=client_credentials&client_id=alice&client_secret={R}"
    assert redact('{"u": "https://h/cb?x=1\\u0026code=SplxlOBe"}') == (
        f'{{"u": "https://h/cb?x=1\\u0026code={R}"}}'
    )
    assert redact("StaticToken(token='opaque123token', user='alice')") == (
        f"StaticToken(token='{R}', user='alice')"
    )


# ---------------------------------------------------------------- secret fields in JSON / dicts
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"access_token": "opaque-value", "token_type": "Bearer"}', f'"access_token": "{R}"'),
        ('{"client_secret": "x", "client_id": "alice"}', f'"client_secret": "{R}"'),
        ("{'password': 'hunter2', 'user': 'bob'}", f"'password': '{R}'"),
        ('{"apiKey": "k", "refreshToken": "r"}', f'{{"apiKey": "{R}", "refreshToken": "{R}"}}'),
        (f'{{"type": "auth", "token": "{OPAQUE}"}}', f'"token": "{R}"'),
        ('"{\\"password\\": \\"hunter22\\"}"', f'\\"password\\": \\"{R}\\"'),
    ],
)
def test_secret_fields_in_json_and_reprs(text: str, expected: str) -> None:
    assert expected in redact(text)


# ---------------------------------------------------------------- API-key headers
@pytest.mark.parametrize("header", ["X-API-Key", "api-key", "X-Auth-Token", "x-access-token"])
def test_api_key_headers(header: str) -> None:
    for shape, text in _shapes(header, "k_live_9f8e7d6c5b4a3").items():
        out = redact(text)
        assert "9f8e7d" not in out, (shape, out)
        assert R in out, shape


# ---------------------------------------------------------------- WebSocket subprotocols
def test_subprotocol_tokens_go_and_protocol_names_stay() -> None:
    token = base64.urlsafe_b64encode(b"an-opaque-token-1234567890").decode().rstrip("=")
    handshake = (
        f"handshake GET ws://h/ws | Sec-WebSocket-Protocol: jwt-auth, jwt.{token} | Origin: o"
    )
    assert f"Sec-WebSocket-Protocol: jwt-auth, jwt.{R} | Origin: o" in redact(handshake)
    assert redact(f'websocat --protocol "jwt-auth, jwt.{token}"') == (
        f'websocat --protocol "jwt-auth, jwt.{R}"'
    )
    # a bare token as its own subprotocol, in the header and in a list repr
    bare = f"Sec-WebSocket-Protocol: chat.v1, {OPAQUE}"
    assert redact(bare) == f"Sec-WebSocket-Protocol: chat.v1, {R}"
    assert redact(repr({"Sec-WebSocket-Protocol": f"graphql-ws, {OPAQUE}"})) == (
        repr({"Sec-WebSocket-Protocol": f"graphql-ws, {R}"})
    )
    names = "Sec-WebSocket-Protocol: jwt-auth, graphql-transport-ws, chat.v2"
    assert redact(names) == names


def test_a_spec_declared_subprotocol_prefix_can_be_registered() -> None:
    text = 'websocat --protocol "chat, access.v1.ZXhhbXBsZS10b2tlbi0xMjM0NTY3"'
    redactor = Redactor()
    assert "ZXhhbXBsZS10" in redactor(text)  # unknown prefix: not a token carrier yet
    redactor.add_subprotocol_prefix("access.v1.")
    redactor.add_subprotocol_prefix("access.v1.")  # twice is once
    redactor.add_subprotocol_prefix("")  # nothing to anchor on: ignored
    assert redactor(text) == f'websocat --protocol "chat, access.v1.{R}"'
    assert "jwt." in DEFAULT_SUBPROTOCOL_PREFIXES


# ---------------------------------------------------------------- JWTs and free-text credentials
def test_jwts_and_base64_jwts_anywhere() -> None:
    carried = base64.urlsafe_b64encode(JWT.encode()).decode().rstrip("=")
    out = redact(f"frame {{'t': '{JWT}'}} protocol {carried} end")
    assert out == f"frame {{'t': '{R}'}} protocol {R} end"


def test_free_text_bearer_and_basic_credentials() -> None:
    assert redact("rejected Bearer Zx9abc123def") == f"rejected Bearer {R}"
    assert redact("you sent basic Ym9iOmh1bnRlcjI=") == f"you sent basic {R}"


# ---------------------------------------------------------------- echoed exact secrets
@pytest.mark.parametrize(
    "secret", [OPAQUE, 'sp ace&amp="quote\\back/slash+plus', "ünïcødé-sécret-ß", JWT]
)
def test_a_registered_secret_goes_in_its_common_encodings(secret: str) -> None:
    redactor = Redactor([secret])
    echoes = [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
        repr(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    ]
    for echo in echoes:
        out = redactor(f"server said: {echo}!")
        assert secret not in out, echo
        assert echo not in out, echo
        assert not _recoverable(secret, out), echo


@pytest.mark.parametrize("before", range(6))
def test_a_secret_inside_a_longer_base64_blob_cannot_be_decoded_back(before: int) -> None:
    """A server echoes JSON that holds the secret, base64-encoded, at any byte alignment."""
    blob = json.dumps({"k" * before: OPAQUE, "n": 1}).encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        out = Redactor([OPAQUE])(f"body={encode(blob).decode()}")
        assert not _recoverable(OPAQUE, out), out


def test_a_jwts_claims_and_signature_alone_are_redacted() -> None:
    _, claims, signature = JWT.split(".")
    assert redact(f"claims {claims} sig {signature}", JWT) == f"claims {R} sig {R}"


def test_short_or_missing_secrets_are_ignored() -> None:
    redactor = Redactor(["abc"])
    redactor.add(None)
    redactor.add("")
    assert redactor("abc abcdef") == "abc abcdef"


# ---------------------------------------------------------------- no over-redaction
PROSE = [
    "valid tokens open the channel (header, subprotocol)",
    "tokens in the query string (token) are refused",
    "connections close with 1008 when their token expires",
    "unsigned alg:none tokens are refused (header)",
    "credentials rejected: 401 from GET /api/agents for alice",
    "credentials rejected: HTTP 403 at the handshake; REST accepted the same credentials",
    "pair mismatch at /payload/token_count and /payload/tool_call_id",
    "token_count=3 max_tokens=5 next_page_token",
    "closed with code=1008 (policy violation: token expired); key=value; session ended",
    "the Authorization header was missing",
    "Authorization: the header was missing",
    "Bearer authentication is required",
    'WWW-Authenticate: Bearer realm="chat", error="invalid_token"',
    'Basic realm="chat"; Basic authentication; basic checks',
    "jwt.InvalidSignatureError was raised; see jwt.io",
    "X-API-Key header required; Set-Cookie and Cookie headers",
    "Sec-WebSocket-Protocol: jwt-auth",
    "[\"client_secret\", \"client_id\"] and ('authorization', 'content-type')",
    '{"type": "response_chunk", "token": "Hello", "code": "FORMAT_ERROR", "key": "/a/b"}',
    '{"error": {"code": "UNKNOWN_MESSAGE_TYPE", "message": "unknown type"}}',
    '{"code": "RATE_LIMIT_EXCEEDED_429", "key": "/payload/tool_call_id"}',
    "secret santa; password reset flow; the client secret was rejected",
    "sort by key: name; -u is the user flag; e-book sub-branch",
    "GET /api/threads/{thread_id}/messages never serves another user's object",
    "reproduce: chatcontract run --category websocket --seed 0 --base-url http://127.0.0.1:8000",
]


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_text_survives(text: str) -> None:
    assert redact(text) == text


def _spec_words(node: Any) -> list[str]:
    words: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            words.append(str(key))
            if key in ("summary", "description", "title", "name", "operationId", "pattern"):
                words.append(str(value))
            words += _spec_words(value)
    elif isinstance(node, list):
        for item in node:
            words += _spec_words(item)
    return words


def test_the_specs_names_and_descriptions_survive() -> None:
    """Contract names and messages quote the spec: its prose must come out as it went in."""
    document = yaml.safe_load((Path(__file__).parents[1] / "openapi.yaml").read_text())
    redactor = Redactor(["reference-secret"])
    changed = [w for w in _spec_words(document) if redactor(w) != w]
    assert changed == []


# ---------------------------------------------------------------- robustness
HOSTILE = {
    "eyJ run": "eyJ" * 70_000,
    "ZXlK run": "ZXlK" * 50_000,
    "letters then ://": "a" * 200_000 + "://",
    "authority without @": "http://" + "a:" * 100_000,
    "schemes": "http://a" * 25_000,
    "header names": "Authorization:" * 15_000,
    "quoted header names": "'Authorization: " * 15_000,
    "open quoted fields": "'token': '" * 20_000,
    "params": "token=" * 35_000,
    "quoted params": "token='" * 30_000,
    "bearer words": "bearer " * 30_000,
    "long basic": "Basic " + "A" * 200_000,
    "prefixes": "jwt." * 50_000,
    "cookies": "Cookie: " + "a=b;" * 50_000,
    "protocols": "Sec-WebSocket-Protocol: " + "a, " * 70_000,
    "encoded schemes": "%3A%2F%2F" * 20_000,
    "digest params": "Authorization: Digest " + "a=b, " * 40_000,
    "backslashes": '"token": "' + "\\" * 200_000,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_does_not_make_the_patterns_backtrack(name: str) -> None:
    """A server controls what we record; no input may stall the run (a quadratic pattern
    would take minutes on these)."""
    redactor = Redactor([OPAQUE, JWT])
    redactor.add_url("http://bob:hunter22@h.example/?sig=abcdef123")
    assert isinstance(redactor(HOSTILE[name]), str)


def test_concurrent_registration_and_redaction() -> None:
    redactor = Redactor()
    secrets = [f"secret-{n:04d}-{OPAQUE}" for n in range(200)]
    errors: list[BaseException] = []

    def register(chunk: list[str]) -> None:
        try:
            for secret in chunk:
                redactor.add(secret)
                assert secret not in redactor(f"x {secret} y")
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(secrets[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    text = " ".join(secrets)
    assert redactor(text) == " ".join([R] * len(secrets))

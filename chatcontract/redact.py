"""Keeping secrets out of every output.

Every string that leaves the process through a reporter, a repro command or a
recorded frame passes through a :class:`Redactor`. It has two nets:

* **exact secrets** the run knows (tokens, client secrets, the credentials in
  ``--base-url``), each also in the encodings a server may echo it back in:
  URL-encoded, base64 (standard and URL-safe, alone or at any byte alignment
  inside a longer blob such as a Basic credential), JSON- and repr-escaped,
  and a JWT's claims and signature on their own;
* **credential shapes**, whoever they belong to: userinfo in URLs (also
  URL-encoded), the values of ``Authorization`` / ``Proxy-Authorization`` and
  API-key headers, ``Cookie`` / ``Set-Cookie`` values (names kept), WebSocket
  subprotocol tokens, secret query and form parameters (names kept), secret
  JSON and dict fields, ``curl -u`` / ``-b``, JWTs, and bearer or basic
  credentials in free text; in raw header lines, curl and websocat ``-H``
  arguments, dict and tuple reprs and (escaped) JSON alike.

Shell variables (``$CHATCONTRACT_TOKEN``) and placeholders are left alone, so
reproductions stay runnable, and redacting twice changes nothing. Prose keeps
its words: a value is a credential where its position says so, or, for
ambiguous names such as ``token`` or ``code``, only where it also looks like
one. Patterns are compiled once, each pass runs only when a cheap substring
test says it can match, and every pattern starts at a literal or a character
class and never rescans a run, so no input makes it quadratic. Thread-safe;
no I/O.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

__all__ = ["DEFAULT_SUBPROTOCOL_PREFIXES", "PLACEHOLDER", "Redactor"]

PLACEHOLDER = "<redacted>"
DEFAULT_SUBPROTOCOL_PREFIXES: tuple[str, ...] = ("jwt.", "base64url.bearer.authorization.k8s.io.")
"""Subprotocol prefixes whose remainder is a token, before any the spec declares."""

_MIN_SECRET = 6  # shorter exact values would redact ordinary words
_MIN_CORE = 8  # a base64 fragment shorter than this is too likely to occur by chance
_MIN_JWT_PART = 16

# ---------------------------------------------------------------- names
_HEADER_KIND: dict[str, str] = {
    "authorization": "auth",
    "proxy-authorization": "auth",
    **dict.fromkeys(
        (
            "x-api-key",
            "api-key",
            "x-auth-token",
            "x-access-token",
            "x-session-token",
            "x-amz-security-token",
            "x-goog-api-key",
            "private-token",
        ),
        "key",
    ),
    "cookie": "cookie",
    "set-cookie": "set-cookie",
    "sec-websocket-protocol": "protocol",
}
# Fields whose value is secret whatever it looks like (query, form and JSON names; regexes).
_SECRET_FIELDS = (
    r"access[_-]?token",
    r"refresh[_-]?token",
    r"id[_-]?token",
    r"auth[_-]?token",
    r"session[_-]?token",
    r"api[_-]?key",
    r"client[_-]?secret",
    r"secret",
    r"password",
    r"passwd",
    r"token",
    r"signature",
    r"x-amz-signature",
    r"x-amz-security-token",
    r"x-goog-signature",
)
# Secret in a query string, ordinary words elsewhere ("closed with code=1008").
_QUERY_ONLY = ("key", "code", "sig", "auth", "session", "sessionid", "session_id", "jwt")
# JSON keys that hold a secret only when the value looks like one: {"token": "Hello"} is a
# streamed text token, {"code": "FORMAT_ERROR"} an error code.
_AMBIGUOUS_KEYS = ("token", "key", "code", "sig", "signature", "session", "auth")
_SCHEME_NAMES = (
    "basic bearer digest token apikey api-key negotiate ntlm hoba mutual "
    "aws4-hmac-sha256 hmac oauth dpop jwt sharedkey key gssapi scram-sha-1 scram-sha-256 "
    "vapid mac privatetoken sso"
)
_SCHEMES = frozenset(_SCHEME_NAMES.split())
_COOKIE_ATTRIBUTE_NAMES = (
    "path domain expires max-age secure httponly samesite partitioned priority comment version"
)
_COOKIE_ATTRIBUTES = frozenset(_COOKIE_ATTRIBUTE_NAMES.split())
# Substrings (of the lowered text) without which a pass cannot match.
_FIELD_WORDS = ("auth", "key", "token", "secret", "pass", "sig", "code", "session", "jwt")
_QUOTED_WORDS = (*_FIELD_WORDS, "cookie", "protocol")
_CURL_FLAGS = ("-u", "--user", "-U", "--proxy-user", "-b", "--cookie")
_TRIGGER_WORDS = (
    *_QUOTED_WORDS,
    "://",
    "%3a%2f%2f",
    "eyj",
    "zxlk",
    "bearer",
    "basic",
    *(f.lower() for f in _CURL_FLAGS),
)


def _alternation(names: Iterable[str]) -> str:
    return "|".join(sorted(names, key=len, reverse=True))  # longest first


def _leading(names: Iterable[str], guard: str) -> str:
    """Case-insensitive ``names`` (regexes starting with a letter) as a pattern that begins
    with a character class, so the engine skips ahead fast; ``guard`` is a lookbehind of
    width 2 (the character before the name, then the name's first) right after it."""
    ordered = sorted(names, key=lambda n: n[0].lower())
    firsts = "".join(sorted({c for n in ordered for c in (n[0].lower(), n[0].upper())}))
    branches = [
        f"(?<=[{first}{first.upper()}])(?i:{_alternation(n[1:] for n in group)})"
        for first, group in groupby(ordered, key=lambda n: n[0].lower())
    ]
    return f"[{firsts}]{guard}(?:{'|'.join(branches)})"


def _dispatch(names: Iterable[str]) -> str:
    """Case-insensitive ``names`` as branches chosen by their first character (several times
    faster than one flat alternation where the pattern is tried at many positions)."""
    ordered = sorted(set(names), key=lambda n: n[0].lower())
    return "|".join(
        f"[{first}{first.upper()}](?i:{_alternation(n[1:] for n in group)})"
        for first, group in groupby(ordered, key=lambda n: n[0].lower())
    )


def _escaped(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(re.escape(n) for n in names)


# ---------------------------------------------------------------- patterns
_USERINFO_CHAR = r"[^\s/?#@\"'<>\\`]"
_USERINFO = re.compile(
    rf"//(?<=://){_USERINFO_CHAR}+(?:@{_USERINFO_CHAR}+)*@(?=[\w\[%.-])"  # scheme://u:p@host
)
_ENCODED_USERINFO = re.compile(  # a URL inside a query string: %3A%2F%2Fu%3Ap%40host
    r"(?P<lead>%3A%2F%2F)(?:(?!%2F|%3F|%23|%40)[^\s/?#&\"'<>\\])+%40(?=[\w\[%.-])", re.I
)
# 'Authorization': 'Bearer x' | "api_key": "x" | ('Cookie', 'a=b') | \"password\": \"x\"
_QUOTED_FIELD = re.compile(
    r"(?P<nq>[\"'])"
    rf"(?P<name>{_dispatch((*_escaped(_HEADER_KIND), *_SECRET_FIELDS, *_AMBIGUOUS_KEYS))})"
    r"\\?(?P=nq)[ \t]*(?P<sep>[:,=])[ \t]*"
    r"(?P<esc>\\)?(?P<q>[\"'])"
    # Escapes are single units, so no run of backslashes can be split two ways. Inside
    # doubly escaped JSON (\"...\") a unit is an escape of the outer string, \\ is a
    # backslash of the inner one, and the value ends at the first unescaped inner quote.
    r"(?P<value>(?(esc)"
    r"(?:[^\\\r\n]|\\(?!\\|(?P=q))[^\r\n]|\\\\(?:[^\\\r\n]|\\[^\r\n]))*+"
    r"|(?:(?!(?P=q))[^\\\r\n]|\\[^\r\n])*+))"
    r"(?(esc)\\)(?P=q)"
)
_PARAM_ITEM = r"[\w-]+=(?:\"[^\"\r\n]*\"|[^\s,'\"]*)"
_UNQUOTED_VALUE = {
    "auth": rf"(?:[A-Za-z][\w.+-]*[ \t]+)?(?:{_PARAM_ITEM}(?:[ \t]*,[ \t]*{_PARAM_ITEM})*"
    r"|[^\s'\"]+)",
    "key": r"[^\s'\"]+",
    "cookie": r"[^=;\s'\"]+=[^;\s'\"]*(?:;[ \t]*[^=;\s'\"]+(?:=[^;\s'\"]*)?)*",
    "set-cookie": r"[^=;\s'\"]+=[^;\s'\"]*(?:;[ \t]*[^=;\s'\"]+(?:=[^;\s'\"]*)?)*",
    "protocol": r"[^\s,'\"]+(?:[ \t]*,[ \t]*[^\s,'\"]+)*",
}


def _header_line(kind: str) -> re.Pattern[str]:
    """``Name: value`` in a raw header line, or quoted as a curl / websocat ``-H`` argument
    (then the value runs to the closing quote)."""
    names = _escaped(n for n, k in _HEADER_KIND.items() if k == kind)
    guard = r"(?:(?<=(?P<q>[\"']).)|(?<![\w-].))"
    return re.compile(
        rf"(?P<name>{_leading(names, guard)})[ \t]*:[ \t]*"
        rf"(?P<value>(?(q)(?:(?!(?P=q))[^\r\n])*|{_UNQUOTED_VALUE[kind]}))"
    )


_HEADER_LINES: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("authorization",), _header_line("auth")),
    (("api-key", "-token"), _header_line("key")),
    (("cookie",), _header_line("cookie")),
    (("set-cookie",), _header_line("set-cookie")),
    (("sec-websocket-protocol",), _header_line("protocol")),
)
_CURL_FLAG = re.compile(
    r"(?P<flag>-(?<!\S-)(?:-user|-proxy-user|-cookie|u|U|b))(?P<sp>[ \t]+|=)"
    r"(?:(?P<q>[\"'])(?P<qvalue>[^\"'\r\n]*)(?P=q)|(?P<value>[^\s\"']+))"
)
_PARAM_VALUE = (
    r"=(?:(?P<q>[\"'])(?P<qvalue>[^\"'\r\n]+)(?P=q)"
    r"|(?P<value>[^&#=\s\"'<>\\(),;\[\]{}]+=*))"
)
_QUERY_PARAM = re.compile(
    rf"(?P<lead>[?&;#]|\\u0026)(?P<name>(?i:{_alternation(_QUERY_ONLY)})){_PARAM_VALUE}"
)
# Guards for _leading: the name does not continue a longer word ("max_token=", "$token=").
_WORD_START = r"(?<![\w-].)"
_PARAM_START = r"(?<![\w.$-].)"
_SECRET_PARAM = re.compile(rf"(?P<name>{_leading(_SECRET_FIELDS, _PARAM_START)}){_PARAM_VALUE}")
_JWT = re.compile(
    r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"
    # ...and a whole JWT in base64 (a subprotocol carrier): "eyJ" encodes as "ZXlK".
    r"|ZXlK(?<![A-Za-z0-9_+/-]ZXlK)[A-Za-z0-9_+/-]{20,}=*"
)
_FREE_BEARER = re.compile(
    rf"(?P<lead>{_leading(['bearer'], _WORD_START)}\s+)(?P<cred>[A-Za-z0-9._~+/-]+=*)"
)
_FREE_BASIC = re.compile(
    rf"(?P<lead>{_leading(['basic'], _WORD_START)}\s+)(?P<cred>[A-Za-z0-9+/]+={{0,2}})"
)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
_COOKIE_PAIR = re.compile(r"(?P<name>[^=;\s,'\"]+)=(?P<value>\"[^\"]*\"|[^;\s,'\"]*)")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_SCHEME_WORD = re.compile(r"[A-Za-z][\w.+-]{0,30}")
_SECRET_FIELD = re.compile(_alternation(_SECRET_FIELDS), re.I)
_AMBIGUOUS_KEY = re.compile(_alternation(_AMBIGUOUS_KEYS), re.I)


# ---------------------------------------------------------------- judging values
def _kept(value: str) -> bool:
    """Nothing to hide: empty, a shell variable or substitution, or a placeholder."""
    stripped = value.strip().strip("\"'")
    return not stripped or stripped.startswith(("$", "<"))


def _credential_like(value: str, min_len: int = 16) -> bool:
    """Whether a bare value looks like a token rather than a word of prose."""
    if len(value) < min_len or not _TOKEN_CHARS.fullmatch(value):
        return False
    digit = any(c.isdigit() for c in value)
    upper = any(c.isupper() for c in value[1:])
    lower = any(c.islower() for c in value)
    if "_" in value and not lower and len(value) < 40:
        return False  # an identifier such as RATE_LIMIT_429, not a token
    return (digit and (upper or lower)) or (upper and lower) or len(value) >= 32


def _basic_credentials(value: str) -> bool:
    """Whether ``value`` is base64 of ``user:password`` (so "Basic realm" stays)."""
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


# ---------------------------------------------------------------- rewriting values
def _auth_value(value: str, bounded: bool) -> str:
    """``Bearer x`` → ``Bearer <redacted>``; ``Digest a="b", c=d`` → ``Digest <redacted>``.

    ``bounded``: the value is a whole quoted string, so all after the scheme is the
    credential. Otherwise (a raw line) the match is a scheme and one credential or a
    parameter list, and prose that merely follows ``Authorization:`` is kept.
    """
    if _kept(value):
        return value
    body = value.lstrip()
    lead = value[: len(value) - len(body)]
    first, _, rest = body.partition(" ")
    rest = rest.strip()
    known = first.lower() in _SCHEMES
    if not rest:  # one word: a scheme alone, or a credential without a scheme
        return value if known else lead + PLACEHOLDER
    if _kept(rest):
        return value
    if bounded:
        scheme_like = known or (_SCHEME_WORD.fullmatch(first) and not _credential_like(first, 8))
        return f"{lead}{first} {PLACEHOLDER}" if scheme_like else lead + PLACEHOLDER
    rest_secret = "=" in rest or _credential_like(rest, 8)
    if known:
        return f"{lead}{first} {PLACEHOLDER}"
    if _credential_like(first, 8):
        return f"{lead}{PLACEHOLDER} {PLACEHOLDER if rest_secret else rest}"
    return f"{lead}{first} {PLACEHOLDER}" if rest_secret else value


def _cookie_value(value: str, *, set_cookie: bool) -> str:
    """Every cookie's value; a ``Set-Cookie``'s attributes (``Path=/``) stay."""
    first = True

    def pair(match: re.Match[str]) -> str:
        nonlocal first
        attribute = set_cookie and not first and match["name"].lower() in _COOKIE_ATTRIBUTES
        first = False
        if attribute or _kept(match["value"]):
            return match.group(0)
        return f"{match['name']}={PLACEHOLDER}"

    return _COOKIE_PAIR.sub(pair, value)


def _protocol_list(value: str, prefixes: tuple[str, ...]) -> str:
    """``jwt-auth, jwt.<token>`` → ``jwt-auth, jwt.<redacted>``; bare token items too."""
    items = value.split(",")
    for index, item in enumerate(items):
        word = item.strip()
        if _kept(word):
            continue
        prefix = next((p for p in prefixes if word.startswith(p) and len(word) > len(p)), None)
        if prefix is not None and not _kept(word[len(prefix) :]):
            items[index] = item.replace(word, prefix + PLACEHOLDER)
        elif _credential_like(word) or _HEX.fullmatch(word):
            items[index] = item.replace(word, PLACEHOLDER)
    return ",".join(items)


def _header_value(kind: str, value: str, bounded: bool, prefixes: tuple[str, ...]) -> str:
    if kind == "auth":
        return _auth_value(value, bounded)
    if kind == "key":
        return value if _kept(value) else PLACEHOLDER
    if kind == "protocol":
        return _protocol_list(value, prefixes)
    return _cookie_value(value, set_cookie=kind == "set-cookie")


def _replace_group(match: re.Match[str], group: str, new: str) -> str:
    whole, offset = match.group(0), match.start()
    start, end = match.span(group)
    return whole[: start - offset] + new + whole[end - offset :]


# ---------------------------------------------------------------- exact secrets
def _b64_forms(raw: bytes) -> Iterator[str]:
    """The secret's base64 alone, and the part of it that is the same inside any longer
    blob (a Basic credential, an echoed JSON body) at each of the three byte alignments."""
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        yield whole
        yield whole.rstrip("=")
        for shift in (1, 2, 0):
            data = b"\0" * shift + raw
            text = encode(data).decode()
            # The first quartet mixes in the bytes before the secret, a partial last one
            # the bytes after it; what lies between depends on the secret alone.
            core = text[4 if shift else 0 : len(text) - (4 if len(data) % 3 else 0)]
            if len(core) >= _MIN_CORE:
                yield core


def _encodings(secret: str) -> set[str]:
    """``secret`` in every form a server or a library commonly echoes it back in."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret, safe="/"),
        quote_plus(secret, safe=""),
        quote(quote(secret, safe=""), safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        *_b64_forms(secret.encode()),
    }
    parts = secret.split(".")
    if len(parts) == 3 and secret.startswith("eyJ"):  # a JWT: its claims and signature alone
        forms.update(p for p in parts[1:] if len(p) >= _MIN_JWT_PART)
    return {f for f in forms if len(f) >= _MIN_SECRET}


def _raw_params(query: str) -> Iterator[tuple[str, str]]:
    for pair in re.split(r"[&;]", query):
        name, sep, value = pair.partition("=")
        if sep and value:
            yield unquote_plus(name), value


@dataclasses.dataclass(frozen=True, slots=True)
class _State:
    """What a call reads, replaced whole on every change (copy on write)."""

    secrets: tuple[str, ...]
    prefixes: tuple[str, ...]
    prefix_token: re.Pattern[str]
    trigger: re.Pattern[str]  # in the lowered text: nothing found, no shape pass can match


def _state(secrets: tuple[str, ...], prefixes: tuple[str, ...]) -> _State:
    alternation = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    pattern = re.compile(rf"(?P<prefix>{alternation})(?P<token>[A-Za-z0-9_~+/=.-]+)")
    words = {*_TRIGGER_WORDS, *(p.lower() for p in prefixes)}
    trigger = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    return _State(secrets, prefixes, pattern, trigger)


class Redactor:
    """Replaces known secrets and credential-shaped strings with :data:`PLACEHOLDER`.

    Call it on every string that leaves the process. :meth:`add` registers an
    exact secret (with its encodings), :meth:`add_url` the credentials inside a
    URL, :meth:`add_subprotocol_prefix` a subprotocol token prefix the spec
    declares (``jwt.`` is known already).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._state = _state((), DEFAULT_SUBPROTOCOL_PREFIXES)
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register an exact secret; values shorter than 6 characters are ignored."""
        if not secret or len(secret) < _MIN_SECRET:
            return
        forms = _encodings(secret)
        with self._lock:
            if forms <= self._known:
                return
            self._known |= forms
            ordered = tuple(sorted(self._known, key=len, reverse=True))
            self._state = dataclasses.replace(self._state, secrets=ordered)

    def add_url(self, url: str) -> None:
        """Register the credentials in ``url``: the userinfo password and ``user:password``
        (so its Basic form is known too), or the user alone when there is no password (a
        token as user name); and the values of secret query or fragment parameters; each as
        written and decoded."""
        try:
            parts = urlsplit(url.strip())
            netloc, query, fragment = parts.netloc, parts.query, parts.fragment
        except ValueError:  # e.g. a broken IPv6 host: take what is recognisable
            netloc, _, rest = url.partition("://")[2].partition("/")
            query, fragment = rest.partition("?")[2], ""
        userinfo = netloc.rpartition("@")[0]
        if userinfo:
            user, colon, password = userinfo.partition(":")
            secrets = [userinfo, f"{unquote(user)}:{unquote(password)}"] if colon else []
            secrets += [password, unquote(password)] if password else [user, unquote(user)]
            for secret in secrets:
                self.add(secret)
        for name, value in (*_raw_params(query), *_raw_params(fragment)):
            if _SECRET_FIELD.fullmatch(name) or name.lower() in _QUERY_ONLY:
                self.add(value)
                self.add(unquote_plus(value))

    def add_subprotocol_prefix(self, prefix: str) -> None:
        """Treat what follows ``prefix`` in a subprotocol (``jwt.<token>``) as a token."""
        with self._lock:
            if not prefix or prefix in self._state.prefixes:
                return
            self._state = _state(self._state.secrets, (*self._state.prefixes, prefix))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        with self._lock:
            state = self._state
        for secret in state.secrets:  # longest first: no fragment of a longer one survives
            if secret in text:
                text = text.replace(secret, PLACEHOLDER)
        lower = text.lower()
        if state.trigger.search(lower) is None:
            return text
        for applies, rewrite in _PASSES:
            if applies(text, lower, state):
                text = rewrite(text, state)
        return text


# ---------------------------------------------------------------- the shape passes
def _userinfo(text: str, state: _State) -> str:
    text = _USERINFO.sub(f"//{PLACEHOLDER}@", text)
    return _ENCODED_USERINFO.sub(lambda m: f"{m['lead']}{PLACEHOLDER}%40", text)


def _quoted_fields(text: str, state: _State) -> str:
    pieces: list[str] = []
    done = position = 0
    while (match := _QUOTED_FIELD.search(text, position)) is not None:
        name, value, sep = match["name"].lower(), match["value"], match["sep"]
        kind = _HEADER_KIND.get(name)
        words = value.split()
        # ("authorization", "content-type") and ["client_secret", "client_id"] are lists of
        # names, not pairs; the second name may begin the next field, so look again there.
        pair = bool(words) and (words[0].lower() in _SCHEMES or _credential_like(words[-1], 8))
        if sep == "," and (kind is None or (kind in ("auth", "key") and not pair)):
            position = match.start("q")
            continue
        if kind is not None:
            new = _header_value(kind, value, True, state.prefixes)
        elif _AMBIGUOUS_KEY.fullmatch(name):
            new = PLACEHOLDER if _credential_like(value) else value
        else:
            new = value if _kept(value) else PLACEHOLDER
        if new != value:
            pieces += [text[done : match.start("value")], new]
            done = match.end("value")
        position = match.end()
    return "".join(pieces) + text[done:] if pieces else text


def _header_lines(text: str, state: _State) -> str:
    lower = text.lower()

    def line(match: re.Match[str]) -> str:
        kind = _HEADER_KIND.get(match["name"].lower())
        value = match["value"]
        if kind is None:
            return match.group(0)
        new = _header_value(kind, value, match["q"] is not None, state.prefixes)
        return match.group(0) if new == value else _replace_group(match, "value", new)

    for words, pattern in _HEADER_LINES:
        if any(w in lower for w in words):
            text = pattern.sub(line, text)
    return text


def _curl_flags(text: str, state: _State) -> str:
    def flag(match: re.Match[str]) -> str:
        group = "qvalue" if match["q"] else "value"
        value = match[group]
        if match["flag"] in ("-b", "--cookie"):
            if "=" not in value:
                return match.group(0)  # -b FILE
            return _replace_group(match, group, _cookie_value(value, set_cookie=False))
        if _kept(value) or ":" not in value:
            return match.group(0)  # a user without a password is not a secret
        return _replace_group(match, group, PLACEHOLDER)

    return _CURL_FLAG.sub(flag, text)


def _params(text: str, state: _State) -> str:
    def param(match: re.Match[str]) -> str:
        group = "qvalue" if match["q"] else "value"
        return match.group(0) if _kept(match[group]) else _replace_group(match, group, PLACEHOLDER)

    return _SECRET_PARAM.sub(param, _QUERY_PARAM.sub(param, text))


def _prefixed_tokens(text: str, state: _State) -> str:
    def token(match: re.Match[str]) -> str:
        start, value = match.start(), match["token"]
        if start and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
            return match.group(0)  # "myjwt.…": not a prefix here
        if len(value) < 16 or not (any(c.isdigit() for c in value) or len(value) >= 32):
            return match.group(0)  # "jwt.InvalidSignatureError", "jwt.io"
        return match["prefix"] + PLACEHOLDER

    return state.prefix_token.sub(token, text)


def _jwts(text: str, state: _State) -> str:
    return _JWT.sub(PLACEHOLDER, text)


def _free_credentials(text: str, state: _State) -> str:
    def bearer(match: re.Match[str]) -> str:
        keep = not _credential_like(match["cred"], 8)
        return match.group(0) if keep else match["lead"] + PLACEHOLDER

    def basic(match: re.Match[str]) -> str:
        cred = match["cred"]
        keep = len(cred) < 8 or not _basic_credentials(cred)
        return match.group(0) if keep else match["lead"] + PLACEHOLDER

    return _FREE_BASIC.sub(basic, _FREE_BEARER.sub(bearer, text))


Applies = Callable[[str, str, _State], bool]


def _contains(*words: str, lowered: bool = True, also: str = "") -> Applies:
    def applies(text: str, lower: str, state: _State) -> bool:
        haystack = lower if lowered else text
        return (not also or any(c in text for c in also)) and any(w in haystack for w in words)

    return applies


def _has_prefix(text: str, lower: str, state: _State) -> bool:
    return any(p in text for p in state.prefixes)


_PASSES: tuple[tuple[Applies, Callable[[str, _State], str]], ...] = (
    (_contains("://", "%3a%2f%2f"), _userinfo),
    (_contains(*_QUOTED_WORDS, also="\"'"), _quoted_fields),
    (
        _contains("authorization", "api-key", "-token", "cookie", "protocol", also=":"),
        _header_lines,
    ),
    (_contains(*_CURL_FLAGS, lowered=False), _curl_flags),
    (_contains(*_FIELD_WORDS, also="="), _params),
    (_has_prefix, _prefixed_tokens),
    (_contains("eyJ", "ZXlK", lowered=False), _jwts),
    (_contains("bearer", "basic"), _free_credentials),
)

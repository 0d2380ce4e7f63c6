"""What a stream's ``itemSchema`` says about its events: one derivation for lint and the model.

An SSE event is ``{event, data, id, retry}`` on the wire; OpenAPI 3.2 describes
one with a media type's ``itemSchema``. Any valid shape of it is read here:

* where the type of an event is: the SSE ``event`` field (branches fixing
  ``event`` by ``const``, a one-value ``enum`` or a ``discriminator`` mapping),
  a property inside the JSON ``data`` (``contentSchema`` branches fixing it the
  same ways; ``x-stream.discriminator``, the content's ``discriminator`` or
  ``type``), or nowhere (an untyped stream);
* what each type's data is: JSON (``contentMediaType: application/json`` +
  ``contentSchema``), a plain string (a sentinel such as ``data: [DONE]`` is a
  branch whose ``data`` is ``const: "[DONE]"``), or nothing (a branch without
  ``data``: a block that a browser's EventSource never dispatches);
* what events that no type names are validated against (untyped branches).

``x-stream.event-type-from`` forces the first choice; otherwise it is derived,
and the type always comes from one place. Nothing here rejects a document:
what cannot be derived becomes a note (a lint warning). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from chatcontract.spec.model import EventShape
from chatcontract.spec.refs import RefCycleError, inline, join
from chatcontract.spec.refs import deref as _deref

__all__ = [
    "SSE_MEDIA_TYPE",
    "SseResponse",
    "StreamDerivation",
    "derive_stream",
    "find_sse_response",
    "fixed_value",
    "is_json_media_type",
    "message_discriminator",
    "pointer_tokens",
    "schemas_at",
    "unjudgeable_sequences",
]

JSON = Any
SSE_MEDIA_TYPE = "text/event-stream"
Note = tuple[str, str]
"""``(JSON pointer, message)`` of something that could not be derived."""

# Keywords that do not constrain an instance: an outer schema holding only these
# next to its oneOf adds nothing to each branch.
_ANNOTATIONS = frozenset(
    {
        "oneOf",
        "anyOf",
        "discriminator",
        "description",
        "title",
        "example",
        "examples",
        "externalDocs",
        "deprecated",
        "$comment",
        "xml",
    }
)


def is_json_media_type(value: str) -> bool:
    """``application/json`` and every ``+json`` structured syntax suffix."""
    base = value.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def pointer_tokens(where: str) -> tuple[str, ...]:
    """A discriminator's path: a JSON pointer (``/header/msg_type``) or one property name."""
    if not where.startswith("/"):
        return (where,)
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in where[1:].split("/"))


def schemas_at(
    document: Mapping[str, JSON], schema: JSON, tokens: tuple[str, ...], depth: int = 0
) -> list[JSON]:
    """Every subschema ``schema`` declares at the property path ``tokens`` (through
    ``allOf``, ``oneOf``, ``anyOf`` and array ``items``); empty: the path is not declared."""
    schema = _deref(document, schema)
    if not isinstance(schema, dict) or depth > 16:
        return []
    if not tokens:
        return [schema]
    found: list[JSON] = []
    props = schema.get("properties")
    if isinstance(props, dict) and tokens[0] in props:
        found += schemas_at(document, props[tokens[0]], tokens[1:], depth + 1)
    if tokens[0].isdigit() and isinstance(schema.get("items"), dict):
        found += schemas_at(document, schema["items"], tokens[1:], depth + 1)
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key) or ():
            found += schemas_at(document, part, tokens, depth + 1)
    return found


def message_discriminator(messages: Mapping[str, JSON]) -> str:
    """Where ``x-websocket.messages`` puts a frame's type: its ``discriminator``, else the
    ``discriminator.propertyName`` of a message schema (standard OpenAPI), else ``type``."""
    explicit = messages.get("discriminator")
    if isinstance(explicit, str):
        return explicit
    for side in ("client", "server"):
        for schema in (messages.get(side) or {}).values():
            for name in _discriminators({}, schema):
                return name
    return "type"


def fixed_value(document: Mapping[str, JSON], schema: JSON, prop: str) -> str | None:
    """The one string ``schema`` allows at ``prop`` (``const`` or one-value ``enum``), via allOf.

    ``prop`` may be a JSON pointer (``/header/msg_type``): the value fixed at that path.
    """
    if prop.startswith("/"):
        values = {
            _single(document, found) for found in schemas_at(document, schema, pointer_tokens(prop))
        }
        values.discard(None)
        return values.pop() if len(values) == 1 else None
    schema = _deref(document, schema)
    if not isinstance(schema, dict):
        return None
    spec = _deref(document, (schema.get("properties") or {}).get(prop))
    found = _single(document, spec)
    if found is not None:
        return found
    for part in schema.get("allOf") or ():
        found = fixed_value(document, part, prop)
        if found is not None:
            return found
    return None


def _single(document: Mapping[str, JSON], schema: JSON) -> str | None:
    """The one string value ``schema`` itself allows, if it allows exactly one."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("const"), str):
        return str(schema["const"])
    enum = schema.get("enum")
    if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
        return enum[0]
    for part in schema.get("allOf") or ():
        found = _single(document, _deref(document, part))
        if found is not None:
            return found
    return None


@dataclass(frozen=True, slots=True)
class SseResponse:
    """The success response of a stream operation."""

    status: int
    pointer: str
    """Of the ``text/event-stream`` media type object."""
    media: Mapping[str, JSON]


def find_sse_response(
    document: Mapping[str, JSON], pointer: str, op: Mapping[str, JSON]
) -> SseResponse | None:
    """The first 2xx response of ``op`` (at ``pointer``) that documents an event stream."""
    responses = op.get("responses")
    if not isinstance(responses, dict):
        return None
    for code, raw in responses.items():
        code = str(code)
        if not (code.isdigit() and code.startswith("2")):
            continue
        response = _deref(document, raw)
        content = response.get("content") if isinstance(response, dict) else None
        if not isinstance(content, dict):
            continue
        for media_type, media in content.items():
            if str(media_type).split(";", 1)[0].strip().lower() == SSE_MEDIA_TYPE:
                media = _deref(document, media)
                at = join(pointer, "responses", code, "content", media_type)
                return SseResponse(int(code), at, media if isinstance(media, dict) else {})
    return None


@dataclass(slots=True)
class _Branch:
    """One alternative of a oneOf/anyOf tree, with what its ancestors say."""

    node: dict[str, JSON]
    at: str
    outers: tuple[dict[str, JSON], ...]
    """The schemas holding the oneOf/anyOf this branch comes from, innermost first."""
    named: dict[str, str]
    """Discriminator property -> the name an explicit ``mapping`` gives this branch."""
    implicit: dict[str, str]
    """Discriminator property -> the component name (OpenAPI's implicit mapping)."""


def _ref_key(ref: str) -> str:
    return ref if ref.startswith("#") else f"#/components/schemas/{ref}"


def _branches(
    document: Mapping[str, JSON],
    raw: JSON,
    at: str,
    outers: tuple[dict[str, JSON], ...] = (),
    named: dict[str, str] | None = None,
    implicit: dict[str, str] | None = None,
    depth: int = 0,
) -> Iterator[_Branch]:
    node = _deref(document, raw)
    if not isinstance(node, dict):
        node = {} if node is True or node is None else {"not": {}}
    key = next((k for k in ("oneOf", "anyOf") if isinstance(node.get(k), list)), None)
    if key is None or depth > 8:
        yield _Branch(node, at, outers, dict(named or {}), dict(implicit or {}))
        return
    mapping: dict[str, str] = {}
    prop = None
    disc = node.get("discriminator")
    if isinstance(disc, dict) and isinstance(disc.get("propertyName"), str):
        prop = disc["propertyName"]
        for name, target in (disc.get("mapping") or {}).items():
            if isinstance(target, str):
                mapping.setdefault(_ref_key(target), str(name))
    for index, child in enumerate(node[key]):
        child_named = dict(named or {})
        child_implicit = dict(implicit or {})
        ref = child.get("$ref") if isinstance(child, dict) else None
        if prop is not None and isinstance(ref, str):
            if ref in mapping:
                child_named[prop] = mapping[ref]
            elif ref.startswith("#/components/schemas/"):
                child_implicit[prop] = ref.rsplit("/", 1)[-1]
        yield from _branches(
            document,
            child,
            join(at, key, index),
            (node, *outers),
            child_named,
            child_implicit,
            depth + 1,
        )


def _discriminators(document: Mapping[str, JSON], raw: JSON) -> Iterator[str]:
    """Every ``discriminator.propertyName`` along the oneOf/anyOf tree of ``raw``."""
    for branch in _branches(document, raw, ""):
        for outer in (*branch.outers, branch.node):
            disc = outer.get("discriminator")
            if isinstance(disc, dict) and isinstance(disc.get("propertyName"), str):
                yield disc["propertyName"]


def _name(document: Mapping[str, JSON], branch: _Branch, prop: str) -> str | None:
    """The value ``branch`` fixes for ``prop``: mapping, then const / enum, then implicit."""
    if prop in branch.named:
        return branch.named[prop]
    for schema in (branch.node, *branch.outers):
        found = fixed_value(document, schema, prop)
        if found is not None:
            return found
    return branch.implicit.get(prop)


def _property(document: Mapping[str, JSON], branch: _Branch, prop: str) -> JSON | None:
    """The schema of ``prop`` in ``branch`` (or its ancestors), through allOf."""

    def find(schema: JSON, depth: int = 0) -> JSON | None:
        schema = _deref(document, schema)
        if not isinstance(schema, dict) or depth > 8:
            return None
        props = schema.get("properties")
        if isinstance(props, dict) and prop in props:
            return _deref(document, props[prop])
        for part in schema.get("allOf") or ():
            found = find(part, depth + 1)
            if found is not None:
                return found
        return None

    for schema in (branch.node, *branch.outers):
        found = find(schema)
        if found is not None:
            return found
    return None


def _required(document: Mapping[str, JSON], branch: _Branch) -> set[str]:
    names: set[str] = set()

    def collect(schema: JSON, depth: int = 0) -> None:
        schema = _deref(document, schema)
        if not isinstance(schema, dict) or depth > 8:
            return
        names.update(r for r in schema.get("required") or () if isinstance(r, str))
        for part in schema.get("allOf") or ():
            collect(part, depth + 1)

    for schema in (branch.node, *branch.outers):
        collect(schema)
    return names


def _with_outers(branch: _Branch) -> JSON:
    """The branch schema under the constraints its ancestors add besides the oneOf."""
    extra = [
        {k: v for k, v in outer.items() if k not in _ANNOTATIONS}
        for outer in branch.outers
        if set(outer) - _ANNOTATIONS
    ]
    return {"allOf": [*extra, branch.node]} if extra else branch.node


@dataclass(slots=True)
class _Data:
    """What an itemSchema branch says about ``data``."""

    kind: Literal["json", "text", "none"]
    raw: JSON = None
    """The contentSchema (json) or the data property schema (text)."""
    at: str = ""
    sentinel: str | None = None
    dataless: bool = False


@dataclass(slots=True)
class StreamDerivation:
    """Everything derived for one stream operation."""

    status: int
    item_schema: Mapping[str, JSON] | None
    type_from: Literal["event", "data"] | None
    discriminator: str
    kinds: dict[str, EventShape] = field(default_factory=dict)
    sentinels: dict[str, str] = field(default_factory=dict)
    fallback: EventShape | None = None
    untyped: str = ""
    """Why some events carry no type (empty when every event is typed)."""
    notes: list[Note] = field(default_factory=list)

    @property
    def types(self) -> set[str]:
        return set(self.kinds)


class _Deriver:
    """Reads branches into kinds, collecting notes on what it cannot read."""

    def __init__(self, document: Mapping[str, JSON], openapi: str) -> None:
        self.document = document
        self.legacy = openapi.startswith("3.0")
        self.notes: list[Note] = []

    def schema(self, raw: JSON, at: str) -> Mapping[str, JSON] | bool:
        """``raw`` fully inlined (and made JSON Schema where the document is 3.0)."""
        try:
            found = inline(self.document, raw)
        except RefCycleError as exc:
            self.notes.append((at, f"recursive $ref ({exc}): these events are not validated"))
            return True
        if found is None:
            return True
        if self.legacy:
            found = _from_openapi_30(found)
        return found if isinstance(found, dict | bool) else True

    def data(self, branch: _Branch) -> _Data:
        data = _property(self.document, branch, "data")
        dataless = "data" not in _required(self.document, branch)
        at = join(branch.at, "properties", "data")
        if data is None:
            return _Data("none", dataless=True)
        media = data.get("contentMediaType") if isinstance(data, dict) else None
        if isinstance(media, str) and is_json_media_type(media):
            return _Data(
                "json", data.get("contentSchema", True), join(at, "contentSchema"), None, dataless
            )
        return _Data("text", data, at, _single(self.document, data), dataless)

    def collect(
        self,
        derived: StreamDerivation,
        branches: list[_Branch],
        datas: list[_Data],
        names: list[str | None],
    ) -> None:
        """Sort every branch into a kind, a sentinel or the untyped fallback."""
        mode = derived.type_from
        kinds = derived.kinds
        jsons: list[Mapping[str, JSON] | bool] = []
        texts: list[Mapping[str, JSON] | bool] = []
        untyped: list[str] = []

        def add(shape: EventShape) -> None:
            kinds[shape.name] = _merge(kinds.get(shape.name), shape)

        for branch, data, name in zip(branches, datas, names, strict=True):
            if data.kind == "none":
                if name is not None:
                    add(EventShape(name, None, True, True))
            elif data.kind == "text":
                text = self.schema(data.raw, data.at)
                if data.sentinel is not None and (mode != "event" or name is None):
                    derived.sentinels[data.sentinel] = name or data.sentinel
                    add(EventShape(name or data.sentinel, None, text, data.dataless))
                elif mode == "event" and name is not None:
                    add(EventShape(name, None, text, data.dataless))
                else:
                    texts.append(text)
                    untyped.append(branch.at)
            elif mode == "event" and name is not None:
                add(EventShape(name, self.schema(data.raw, data.at), None, data.dataless))
            elif mode != "data":
                jsons.append(self.schema(data.raw, data.at))
                untyped.append(branch.at)
            else:
                for part in _branches(self.document, data.raw, data.at):
                    schema = self.schema(_with_outers(part), part.at)
                    part_name = _name(self.document, part, derived.discriminator)
                    if part_name is None:
                        jsons.append(schema)
                        untyped.append(part.at)
                    else:
                        add(EventShape(part_name, schema))
        if jsons or texts:
            derived.fallback = EventShape("", _any_of(jsons), _any_of(texts))
            derived.untyped = _why_untyped(mode, derived.discriminator, untyped)


def _any_of(schemas: list[Mapping[str, JSON] | bool]) -> Mapping[str, JSON] | bool | None:
    if not schemas:
        return None
    if any(s is True or s == {} for s in schemas):
        return True
    return schemas[0] if len(schemas) == 1 else {"anyOf": list(schemas)}


def _merge(old: EventShape | None, new: EventShape) -> EventShape:
    if old is None:
        return new
    jsons = [s for s in (old.json, new.json) if s is not None]
    texts = [s for s in (old.text, new.text) if s is not None]
    return EventShape(new.name, _any_of(jsons), _any_of(texts), old.dataless or new.dataless)


def derive_stream(
    document: Mapping[str, JSON],
    op: Mapping[str, JSON],
    pointer: str,
    label: str,
) -> StreamDerivation | None:
    """Derive ``op``'s event contract; ``None`` when ``op`` answers no event stream."""
    found = find_sse_response(document, pointer, op)
    if found is None:
        return None
    openapi = str(document.get("openapi", ""))
    raw_settings = op.get("x-stream")
    settings: Mapping[str, JSON] = raw_settings if isinstance(raw_settings, dict) else {}
    source = settings.get("event-type-from")
    forced: Literal["event", "data"] | None = (
        "event" if source == "event" else "data" if source == "data" else None
    )
    explicit = settings.get("discriminator")
    raw, at = found.media.get("itemSchema"), join(found.pointer, "itemSchema")
    if raw is None and not openapi.startswith("3.2") and _describes_events(document, found.media):
        # Before 3.2, tools (schemathesis among them) read `schema` as one event.
        raw, at = found.media.get("schema"), join(found.pointer, "schema")
    if raw is None:
        derived = StreamDerivation(found.status, None, None, str(explicit or "type"))
        derived.untyped = "no itemSchema describes its events"
        derived.notes.append(
            (
                found.pointer,
                f"{label} documents no itemSchema: its events are checked for SSE framing "
                "only (an itemSchema, OpenAPI 3.2, describes each event)",
            )
        )
        return derived
    deriver = _Deriver(document, openapi)
    branches = list(_branches(document, raw, at))
    datas = [deriver.data(b) for b in branches]
    disc = explicit if isinstance(explicit, str) else _content_discriminator(document, datas)
    names = [_name(document, b, "event") for b in branches]
    mode = forced or _mode(document, branches, datas, names, disc)
    try:
        item = inline(document, raw)
    except RefCycleError:
        item = None  # only kept for reference; each kind says what it cannot inline
    derived = StreamDerivation(
        found.status, item if isinstance(item, dict) else None, mode, disc, notes=deriver.notes
    )
    deriver.collect(derived, branches, datas, names)
    if forced is not None and not derived.kinds and branches:
        fixes = "`event`" if forced == "event" else f"the data property {disc!r}"
        derived.notes.append(
            (
                join(pointer, "x-stream", "event-type-from"),
                f"{label}: x-stream.event-type-from is {forced!r} but no itemSchema branch "
                f"fixes {fixes}; every event is validated against the whole itemSchema",
            )
        )
    return derived


def _content_discriminator(document: Mapping[str, JSON], datas: list[_Data]) -> str:
    """The data property that types events: a content ``discriminator``'s, else ``type``."""
    for data in datas:
        if data.kind == "json":
            for name in _discriminators(document, data.raw):
                return name
    return "type"


def _mode(
    document: Mapping[str, JSON],
    branches: list[_Branch],
    datas: list[_Data],
    names: list[str | None],
    disc: str,
) -> Literal["event", "data"] | None:
    """Where the type is when ``x-stream`` does not say: one place, the best covered."""
    carrying = [i for i, data in enumerate(datas) if data.kind != "none"]
    if any(b.named.get("event") or b.implicit.get("event") for b in branches):
        return "event"  # a discriminator on `event` says so outright
    if carrying and all(names[i] for i in carrying):
        return "event"
    if any(
        _name(document, part, disc) is not None
        for data in datas
        if data.kind == "json"
        for part in _branches(document, data.raw, data.at)
    ):
        return "data"
    return "event" if any(names[i] for i in carrying) else None


def _why_untyped(mode: str | None, disc: str, where: list[str]) -> str:
    if mode is None:
        return f"no itemSchema branch fixes `event` and no data branch fixes {disc!r}"
    what = (
        "some itemSchema branches fix no `event`"
        if mode == "event"
        else (f"some data branches fix no {disc!r}")
    )
    return f"{what} ({', '.join(where[:3])}{', …' if len(where) > 3 else ''})"


def _describes_events(document: Mapping[str, JSON], media: Mapping[str, JSON]) -> bool:
    """Whether a pre-3.2 ``schema`` describes one event (it has a ``data`` property)."""
    schema = media.get("schema")
    if schema is None:
        return False
    return any(
        _property(document, branch, "data") is not None
        for branch in _branches(document, schema, "")
    )


def unjudgeable_sequences(
    derived: StreamDerivation, names: tuple[str, ...], events: Mapping[str, tuple[str, ...]]
) -> list[tuple[str, str]]:
    """``(sequence, reason)`` for each named sequence this stream's events cannot drive.

    A sequence needs every event it governs to be typed; where some events carry
    no type, one of them could be any governed event, so judging would guess.
    """
    if not derived.untyped:
        return []
    skipped = []
    for name in names:
        missing = [e for e in events.get(name, ()) if e not in derived.kinds]
        if missing or derived.item_schema is None:
            shown = ", ".join(missing[:4]) + (", …" if len(missing) > 4 else "")
            reason = f"its events carry no type: {derived.untyped}"
            if missing:
                reason += f"; {name} needs {shown}"
            skipped.append((name, reason))
    return skipped


def _from_openapi_30(schema: JSON) -> JSON:
    """OpenAPI 3.0's ``nullable`` and boolean exclusive bounds, as JSON Schema says them."""
    if isinstance(schema, list):
        return [_from_openapi_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _from_openapi_30(value) for key, value in schema.items()}
    nullable = out.get("nullable")
    if isinstance(nullable, bool):
        del out["nullable"]
    if nullable is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)
    return out

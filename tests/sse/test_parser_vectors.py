"""Hand-written vectors for the WHATWG event stream interpretation rules."""

from __future__ import annotations

import ast
import inspect
import tracemalloc

import pytest

from chatcontract.errors import ChatContractError, ConfigError
from chatcontract.sse import parser as parser_module
from chatcontract.sse.parser import (
    VIOLATION_CODES,
    ParserLimits,
    ParserViolation,
    SSEComment,
    SSEEvent,
    SSEParser,
    SSEUndispatched,
)

Item = SSEEvent | SSEComment | SSEUndispatched


def ev(
    data: str,
    event: str = "message",
    *,
    id: str | None = None,
    retry: int | None = None,
    has_event_field: bool = False,
    index: int = 1,
) -> SSEEvent:
    return SSEEvent(event, data, id, retry, has_event_field, index)


def dropped(
    event: str = "message",
    data: str = "",
    *,
    id: str | None = None,
    retry: int | None = None,
    has_event_field: bool = True,
    reason: str = "no-data",
) -> SSEUndispatched:
    """A block EventSource never dispatches, as the parser reports it."""
    return SSEUndispatched(event, data, id, retry, has_event_field, reason)  # type: ignore[arg-type]


def parse(
    chunks: list[bytes], limits: ParserLimits | None = None
) -> tuple[list[Item], ParserViolation | None]:
    parser = SSEParser(limits) if limits else SSEParser()
    items: list[Item] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        items += parser.events_received()
    parser.receive_eof()
    items += parser.events_received()
    return items, parser.violation


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


VECTORS = [
    # Line endings.
    pytest.param([b"data: a\n\n"], [ev("a")], id="lf-line-endings"),
    pytest.param([b"data: a\r\n\r\n"], [ev("a")], id="crlf-line-endings"),
    pytest.param([b"data: a\r\r"], [ev("a")], id="lone-cr-line-endings"),
    pytest.param([b"data: a\rdata: b\r\ndata: c\n\r\n"], [ev("a\nb\nc")], id="mixed-line-endings"),
    pytest.param(
        [b"data: a\r", b"\ndata: b\r\n\r\n"],
        [ev("a\nb")],
        id="crlf-split-across-chunks-is-one-line-ending",
    ),
    pytest.param(
        [b"data: a\r", b"", b"\ndata: b\n\n"],
        [ev("a\nb")],
        id="crlf-split-by-an-empty-chunk-is-one-line-ending",
    ),
    pytest.param(
        [b"data: a\r", b"data: b\r\r"],
        [ev("a\nb")],
        id="cr-at-chunk-end-ends-the-line-without-waiting",
    ),
    pytest.param([b"data: a\n\r"], [ev("a")], id="cr-after-lf-is-a-blank-line"),
    # Byte order mark.
    pytest.param([b"\xef\xbb\xbfdata: a\n\n"], [ev("a")], id="bom-at-start-is-skipped"),
    pytest.param(
        [b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [ev("a")], id="bom-split-across-chunks-is-skipped"
    ),
    pytest.param([b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n"], [], id="only-one-bom-is-skipped"),
    pytest.param(
        [b"data: a\n\n\xef\xbb\xbfdata: b\n\n"],
        [ev("a")],
        id="bom-in-the-middle-is-part-of-the-field-name",
    ),
    pytest.param([b"data: \xef\xbb\xbfx\n\n"], [ev("\ufeffx")], id="bom-inside-data-is-kept"),
    # Comments.
    pytest.param([b": hello\n"], [SSEComment("hello")], id="comment-drops-one-space"),
    pytest.param([b":hello\n"], [SSEComment("hello")], id="comment-without-space"),
    pytest.param([b":  hello\n"], [SSEComment(" hello")], id="comment-keeps-second-space"),
    pytest.param([b":\n"], [SSEComment("")], id="empty-comment-is-a-heartbeat"),
    pytest.param(
        [b"data: a\n: ping\ndata: b\n\n"],
        [SSEComment("ping"), ev("a\nb")],
        id="comment-inside-an-event-does-not-dispatch",
    ),
    # Field and value splitting.
    pytest.param([b"data:  a\n\n"], [ev(" a")], id="only-one-leading-space-is-removed"),
    pytest.param([b"data:a\n\n"], [ev("a")], id="value-without-space"),
    pytest.param([b"data: a: b:c\n\n"], [ev("a: b:c")], id="colons-inside-data-are-kept"),
    pytest.param([b"data\n\n"], [ev("")], id="field-without-colon-has-empty-value"),
    pytest.param([b"data\ndata\n\n"], [ev("\n")], id="two-bare-data-lines-give-one-newline"),
    pytest.param([b" data: a\n\n"], [], id="leading-space-in-field-name-is-not-trimmed"),
    pytest.param([b"data : a\n\n"], [], id="space-before-colon-is-part-of-field-name"),
    pytest.param([b"Data: a\n\n"], [], id="field-names-are-case-sensitive"),
    pytest.param([b"foo: bar\ndata: a\n\n"], [ev("a")], id="unknown-field-is-ignored"),
    # Data buffer and dispatch.
    pytest.param([b"data: a\ndata: b\n\n"], [ev("a\nb")], id="multi-line-data-joined-with-lf"),
    pytest.param([b"data: a\ndata:\n\n"], [ev("a\n")], id="only-one-trailing-newline-is-removed"),
    pytest.param([b"data:\n\n"], [ev("")], id="empty-data-field-dispatches-empty-string"),
    pytest.param(
        [b"event: x\n\n"], [dropped("x")], id="event-without-data-is-reported-not-dispatched"
    ),
    pytest.param(
        [b"id: 4\nretry: 10\nevent: end\n\n"],
        [dropped("end", id="4", retry=10)],
        id="dataless-block-keeps-its-id-and-retry",
    ),
    pytest.param([b"event:\n\n"], [dropped()], id="dataless-block-with-empty-event-is-message"),
    pytest.param([b"\n\n\n"], [], id="blank-lines-alone-dispatch-nothing"),
    pytest.param(
        [b"event: add\ndata: a\n\n"],
        [ev("a", "add", has_event_field=True)],
        id="event-field-sets-type",
    ),
    pytest.param(
        [b"event: add\ndata: a\n\ndata: b\n\n"],
        [ev("a", "add", has_event_field=True), ev("b", index=2)],
        id="event-type-resets-after-dispatch",
    ),
    pytest.param(
        [b"event: x\n\ndata: a\n\n"],
        [dropped("x"), ev("a")],
        id="event-type-resets-after-dataless-block",
    ),
    pytest.param(
        [b"event:\ndata: a\n\n"],
        [ev("a", has_event_field=True)],
        id="empty-event-field-gives-message",
    ),
    pytest.param(
        [b"event: a\nevent: b\ndata: x\n\n"],
        [ev("x", "b", has_event_field=True)],
        id="last-event-field-wins",
    ),
    pytest.param(
        [b"data: a\n\n: c\n\ndata: b\n\n"],
        [ev("a"), SSEComment("c"), ev("b", index=2)],
        id="index-counts-events-not-comments",
    ),
    # Last event ID.
    pytest.param([b"id: 1\ndata: a\n\n"], [ev("a", id="1")], id="id-field-sets-id"),
    pytest.param([b"data: a\n\n"], [ev("a", id=None)], id="id-never-set-is-none"),
    pytest.param(
        [b"id: 1\ndata: a\n\ndata: b\n\n"],
        [ev("a", id="1"), ev("b", id="1", index=2)],
        id="id-persists-across-events",
    ),
    pytest.param(
        [b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"],
        [ev("a", id="1"), ev("b", id="1", index=2)],
        id="id-containing-nul-is-ignored",
    ),
    pytest.param(
        [b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\n\nid:\ndata: c\n\n"],
        [ev("a", id="1"), ev("b", id="", index=2), ev("c", id="", index=3)],
        id="bare-id-resets-to-empty-string",
    ),
    pytest.param(
        [b"id: 7\n\ndata: a\n\n"], [ev("a", id="7")], id="id-in-dataless-block-still-counts"
    ),
    pytest.param(
        [b"data: a\nid: 9\n\n"], [ev("a", id="9")], id="id-after-data-in-same-block-applies"
    ),
    # Retry.
    pytest.param([b"retry: 1500\ndata: a\n\n"], [ev("a", retry=1500)], id="retry-digits"),
    pytest.param([b"retry: 007\ndata: a\n\n"], [ev("a", retry=7)], id="retry-leading-zeros"),
    pytest.param(
        [b"retry: 5\ndata: a\n\ndata: b\n\n"],
        [ev("a", retry=5), ev("b", index=2)],
        id="retry-belongs-to-its-block-only",
    ),
    # Unicode that str.splitlines() would wrongly treat as line breaks.
    pytest.param(
        ["data: a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei\n\n".encode()],
        [ev("a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei")],
        id="unicode-line-separators-in-data-are-not-line-breaks",
    ),
    pytest.param(
        ['data: {"t": "x\u2028y"}\n\n'.encode()],
        [ev('{"t": "x\u2028y"}')],
        id="json-with-u2028-is-not-truncated",
    ),
    pytest.param([b"data: a\x00b\n\n"], [ev("a\x00b")], id="nul-in-data-is-kept"),
    pytest.param(
        bytewise("data: é€😀\n\n".encode()),
        [ev("é€😀")],
        id="multibyte-utf8-split-at-every-byte",
    ),
    # End of stream.
    pytest.param(
        [b"data: a\n\ndata: b\n"],
        [ev("a"), dropped(data="b", has_event_field=False, reason="unterminated")],
        id="unterminated-last-event-reported-not-dispatched",
    ),
    pytest.param(
        [b"data: a\n\ndata: b"],
        [ev("a"), dropped(data="b", has_event_field=False, reason="unterminated")],
        id="partial-last-line-reported-not-dispatched",
    ),
    pytest.param(
        [b"id: 1\nevent: end\ndata: x\ndata: y"],
        [dropped("end", "x\ny", id="1", reason="unterminated")],
        id="unterminated-block-keeps-its-fields",
    ),
    pytest.param([b"data: a\n\n: ping"], [ev("a")], id="partial-comment-at-eof-is-nothing"),
    pytest.param([b"data: a\n\nid: 3"], [ev("a")], id="partial-id-line-at-eof-is-nothing"),
    pytest.param([b""], [], id="empty-stream"),
]


@pytest.mark.parametrize(("chunks", "expected"), VECTORS)
def test_vector(chunks: list[bytes], expected: list[Item]) -> None:
    """Each WHATWG rule, fed as given and byte by byte, which must not matter."""
    assert parse(chunks) == (expected, None)
    assert parse(bytewise(b"".join(chunks))) == (expected, None)


@pytest.mark.parametrize(
    "value",
    [b"10a", b"", b" 10", b"-1", b"1.5", b"+5", "١٢".encode(), "²".encode()],
    ids=["trailing-letter", "empty", "extra-space", "negative", "decimal", "plus", "arabic", "sup"],
)
def test_retry_that_is_not_ascii_digits_is_ignored(value: bytes) -> None:
    """Only ASCII digits set the reconnection time; str.isdigit() alone accepts too much."""
    parser = SSEParser()
    parser.receive_data(b"retry: " + value + b"\ndata: a\n\n")
    assert parser.events_received() == [ev("a")]
    assert parser.reconnection_time is None


def test_absurd_retry_is_ignored_without_parsing_a_huge_integer() -> None:
    """A peer must not make us convert a megabyte of digits; no real delay is that long."""
    parser = SSEParser()
    parser.receive_data(b"retry: 1\n\nretry: " + b"9" * 100_000 + b"\ndata: a\n\n")
    assert parser.events_received() == [ev("a")]
    assert parser.reconnection_time == 1


def test_reconnection_time_survives_dataless_blocks() -> None:
    """Servers often send "retry:" alone; the spec applies it even though nothing dispatches."""
    parser = SSEParser()
    parser.receive_data(b"retry: 3000\n\n")
    assert parser.events_received() == []
    assert parser.reconnection_time == 3000


def test_last_event_id_moves_only_at_blank_lines() -> None:
    """An id in a block the connection cut off must not be sent back as Last-Event-ID."""
    parser = SSEParser()
    assert parser.last_event_id == ""
    parser.receive_data(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert parser.last_event_id == "1"
    parser.receive_eof()
    assert parser.last_event_id == "1"


def test_events_received_drains() -> None:
    """Callers poll after every chunk; an item must be handed out exactly once."""
    parser = SSEParser()
    parser.receive_data(b"data: a\n\n")
    assert parser.events_received() == [ev("a")]
    assert parser.events_received() == []


# Limits and violations.


def test_huge_line_in_64k_chunks_keeps_memory_bounded() -> None:
    """A server that never sends a newline must not make the client buffer it all."""
    parser = SSEParser()
    chunk = b"x" * (64 * 1024)
    tracemalloc.start()
    try:
        for _ in range(1024):  # 64 MiB in total
            parser.receive_data(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parser.violation is not None
    assert parser.violation.code == "line-too-long"
    assert parser.violation.offset == 0
    assert parser.bytes_received == 64 * 1024 * 1024
    assert peak < 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("line", "too_long"),
    [
        (b"data: 12", False),
        (b"data: 123", True),
        ("data: é".encode(), False),
        ("data: éé".encode(), True),
        ("€€€".encode(), True),
    ],
    ids=[
        "exactly-at-limit",
        "one-byte-over",
        "multibyte-at-limit",
        "multibyte-over-in-bytes",
        "fewer-chars-than-limit-but-more-bytes",
    ],
)
def test_line_limit_counts_utf8_bytes(line: bytes, too_long: bool) -> None:
    """The limit is in bytes, as documented, whatever the chunking."""
    limits = ParserLimits(max_line_bytes=8)
    for chunks in ([line + b"\n\n"], bytewise(line + b"\n\n"), [line, b"\n\n"]):
        _, violation = parse(chunks, limits)
        assert (violation is not None) == too_long
        if violation:
            assert (violation.code, violation.offset) == ("line-too-long", 0)


def test_offsets_count_the_skipped_bom() -> None:
    """Offsets are positions in the raw body, which is what a user looks at in a capture."""
    for stream in (b"\xef\xbb\xbf" + b"x" * 9, b"\xef\xbb\xbf" + b"x" * 9 + b"\n"):
        for chunks in ([stream], bytewise(stream)):
            _, violation = parse(chunks, ParserLimits(max_line_bytes=8))
            assert violation is not None
            assert (violation.code, violation.offset) == ("line-too-long", 3)


def test_line_too_long_inside_a_chunk_delivers_what_came_before() -> None:
    """Events before the offending line are genuine and must reach the checker."""
    stream = b"data: a\n\n: hb\ndata: " + b"x" * 100 + b"\n\ndata: b\n\n"
    items, violation = parse([stream], ParserLimits(max_line_bytes=64))
    assert items == [ev("a"), SSEComment("hb")]
    assert violation is not None
    assert (violation.code, violation.offset) == ("line-too-long", 14)
    assert "byte offset 14" in violation.message
    assert "event 2" in violation.message


def test_event_too_large() -> None:
    """Many modest lines can still add up to an unbounded event."""
    limits = ParserLimits(max_event_bytes=10)
    ok, violation = parse([b"data: 12345\ndata: 6789\n\n"], limits)
    assert ok == [ev("12345\n6789")]
    assert violation is None
    stream = b"data: a\n\ndata: 12345\ndata: 67890\n\n"
    for chunks in ([stream], bytewise(stream)):
        items, violation = parse(chunks, limits)
        assert items == [ev("a")]
        assert violation is not None
        assert (violation.code, violation.offset) == ("event-too-large", 21)


@pytest.mark.parametrize(
    ("stream", "offset"),
    [
        (b"data: a\n\ndata: \xff\n\n", 15),
        (b"data: a\n\ndata: \xed\xa0\x80\n\n", 15),
        (b"data: a\n\ndata: \xc0\xaf\n\n", 15),
        (b"data: a\n\n\xe2\x82", 9),
        (b"data: a\n\n: \xf4\x90\x80\x80\n", 11),
    ],
    ids=["invalid-byte", "encoded-surrogate", "overlong", "truncated-at-eof", "beyond-u10ffff"],
)
def test_invalid_utf8_is_flagged_after_delivering_valid_prefix(stream: bytes, offset: int) -> None:
    """Browsers would show U+FFFD; a contract checker must report the broken encoding."""
    for chunks in ([stream], bytewise(stream)):
        items, violation = parse(chunks)
        assert items == [ev("a")]
        assert violation is not None
        assert (violation.code, violation.offset) == ("invalid-utf8", offset)


def test_input_after_violation_is_discarded_without_raising() -> None:
    """A broken peer must not crash the reader, and must not cost much either."""
    parser = SSEParser(ParserLimits(max_line_bytes=4))
    parser.receive_data(b"data: a\n\n")
    violation = parser.violation
    assert violation is not None
    assert violation.code == "line-too-long"
    parser.receive_data(b"\n\ndata: b\n\n\xff")
    parser.receive_eof()
    assert parser.events_received() == []
    assert parser.violation is violation
    assert parser.bytes_received == 9 + 12


def test_violation_message_is_one_line_and_code_is_documented() -> None:
    """Reports print the message on one line; tools switch on the code."""
    _, violation = parse([b"data: \xff\n\n"])
    assert violation is not None
    assert violation.code in VIOLATION_CODES
    assert "\n" not in violation.message
    assert "byte offset 6" in violation.message


def test_receive_data_after_eof_is_a_usage_error() -> None:
    """Feeding a finished stream is our bug, not the server's."""
    parser = SSEParser()
    parser.receive_eof()
    parser.receive_eof()
    with pytest.raises(ChatContractError):
        parser.receive_data(b"data: a\n\n")


@pytest.mark.parametrize("limits", [{"max_line_bytes": 0}, {"max_event_bytes": -1}])
def test_limits_must_be_positive(limits: dict[str, int]) -> None:
    """A zero limit would reject every stream; that is a configuration mistake."""
    with pytest.raises(ConfigError):
        ParserLimits(**limits)


def test_parser_module_is_sans_io() -> None:
    """The parser must stay usable from any transport, so it imports no I/O library."""
    tree = ast.parse(inspect.getsource(parser_module))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {"asyncio", "httpx", "websockets", "socket", "anyio", "trio", "ssl", "selectors"}
    assert imported
    assert not imported & forbidden


def test_exports() -> None:
    """Other modules code against exactly these names."""
    assert set(parser_module.__all__) == {
        "VIOLATION_CODES",
        "ParserLimits",
        "ParserViolation",
        "SSEComment",
        "SSEEvent",
        "SSEParser",
        "SSEUndispatched",
    }

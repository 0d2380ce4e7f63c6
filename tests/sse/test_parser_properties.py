"""Properties of the SSE parser: chunking never matters, any bytes are safe, round trips hold."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.sse.parser import (
    VIOLATION_CODES,
    ParserLimits,
    ParserViolation,
    SSEComment,
    SSEEvent,
    SSEParser,
)

Item = SSEEvent | SSEComment
PROPERTY = settings(max_examples=150, deadline=None)


@dataclass(frozen=True)
class Block:
    """What a server means to send: one event block before it is serialized."""

    data: list[str]
    event: str | None
    id: str | None
    retry: int | None


def parse(chunks: list[bytes], limits: ParserLimits) -> tuple[list[Item], ParserViolation | None]:
    parser = SSEParser(limits)
    items: list[Item] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        items += parser.events_received()
    parser.receive_eof()
    items += parser.events_received()
    return items, parser.violation


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(stream)) for cut in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


# Any text except the three line-ending characters; U+2028, U+0085 and friends included.
line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
blocks = st.builds(
    Block,
    data=st.lists(line_text, min_size=1, max_size=4),
    event=st.none() | line_text,
    id=st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=20),
    retry=st.none() | st.integers(min_value=0, max_value=2**53),
)
comments = st.builds(SSEComment, line_text)


@st.composite
def serialized(draw: st.DrawFn) -> tuple[bytes, list[Item]]:
    """A well-formed stream with mixed line endings, and the items it must parse into."""
    items = draw(st.lists(blocks | comments, max_size=8))
    lines: list[str] = []
    expected: list[Item] = []
    last_id: str | None = None
    for item in items:
        if isinstance(item, SSEComment):
            lines.append(f": {item.text}")
            expected.append(item)
            continue
        if item.event is not None:
            lines.append(f"event: {item.event}")
        if item.id is not None:
            lines.append(f"id: {item.id}")
            last_id = item.id
        if item.retry is not None:
            lines.append(f"retry: {item.retry}")
        lines += [f"data: {value}" for value in item.data]
        lines.append("")
        index = sum(isinstance(done, SSEEvent) for done in expected) + 1
        event = item.event or "message"
        data = "\n".join(item.data)
        expected.append(SSEEvent(event, data, last_id, item.retry, item.event is not None, index))

    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines)))
    text = draw(st.sampled_from(["", "\ufeff"]))
    previous = ""
    for line, ending in zip(lines, endings, strict=False):
        # CR then a blank line ending in LF would read as a single CRLF.
        if previous == "\r" and not line and ending != "\r":
            ending = "\r"
        text += line + ending
        previous = ending
    return text.encode("utf-8"), expected


# Fragments that exercise every branch, invalid UTF-8 and line endings included.
PIECES = [
    b"data",
    b"data:",
    b"data: ",
    b"event:",
    b"id: ",
    b"retry:",
    b"1",
    b":",
    b" ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\xef\xbb\xbf",
    b"\x00",
    b"x",
    "é€😀\u2028".encode(),
    b"\xff",
    b"\xe2\x80",
    b"\xed\xa0\x80",
]
soup = st.lists(st.sampled_from(PIECES) | st.binary(max_size=4), max_size=40).map(b"".join)
small_limits = st.builds(
    ParserLimits,
    max_line_bytes=st.integers(min_value=1, max_value=40),
    max_event_bytes=st.integers(min_value=1, max_value=60),
)
cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


@PROPERTY
@given(serialized(), cuts)
def test_round_trip(case: tuple[bytes, list[Item]], cut_at: list[int]) -> None:
    """Whatever a conforming server serializes, in any framing, parses back unchanged."""
    stream, expected = case
    assert parse(split(stream, cut_at), ParserLimits()) == (expected, None)


@PROPERTY
@given(soup | st.binary(), small_limits, cuts)
def test_chunking_never_changes_the_outcome(
    stream: bytes, limits: ParserLimits, cut_at: list[int]
) -> None:
    """TCP may split a body anywhere; items and the violation (offset too) must not depend on it."""
    whole = parse([stream], limits)
    assert parse(split(stream, cut_at), limits) == whole
    assert parse([stream[i : i + 1] for i in range(len(stream))], limits) == whole


@PROPERTY
@given(st.binary() | soup, st.sampled_from([ParserLimits(), ParserLimits(8, 16)]))
def test_any_bytes_parse_or_give_a_documented_violation(
    stream: bytes, limits: ParserLimits
) -> None:
    """A hostile peer can send anything; the parser never raises and says why it stopped."""
    parser = SSEParser(limits)
    parser.receive_data(stream)
    parser.receive_eof()
    items = parser.events_received()
    events = [item for item in items if isinstance(item, SSEEvent)]
    assert [event.index for event in events] == list(range(1, len(events) + 1))
    assert parser.bytes_received == len(stream)
    violation = parser.violation
    if violation is None:
        stream.decode("utf-8")
        return
    assert violation.code in VIOLATION_CODES
    assert "\n" not in violation.message
    if violation.code == "invalid-utf8":
        with pytest.raises(UnicodeDecodeError) as invalid:
            stream.decode("utf-8")
        assert violation.offset == invalid.value.start
    else:
        # Size violations point at the start of the offending line.
        bom = 3 if stream.startswith(b"\xef\xbb\xbf") else 0
        assert violation.offset == bom or stream[violation.offset - 1 : violation.offset] in (
            b"\r",
            b"\n",
        )

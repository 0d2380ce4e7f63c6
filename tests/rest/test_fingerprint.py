"""Fingerprinting a target's unknown-route answer and judging operations by it (no I/O)."""

from __future__ import annotations

import json

import pytest

from chatcontract.rest.fingerprint import Answer, Presence, calibrate, judge

PROBES = ("/chatcontract-probe-1a2b3c4d/5e6f7a8b", "/api/chatcontract-probe-9f8e7d6c/5b4a3c2d")


def problem(status: int, detail: str, **extra: object) -> Answer:
    body = {"type": "about:blank", "title": "Not Found", "status": status, "detail": detail}
    return Answer.of(status, "application/problem+json", json.dumps({**body, **extra}).encode())


def test_a_documented_404_from_a_real_route_is_present() -> None:
    """FastAPI-style: same keys, but only the unknown route says "Not Found"."""
    prints = calibrate([(p, problem(404, "Not Found", instance=p)) for p in PROBES])
    real = problem(404, "no such thread", instance="/api/threads/thread_abcdef")
    assert judge(real, "/api/threads/thread_abcdef", prints).presence is Presence.PRESENT


def test_an_answer_like_the_probes_is_missing_even_with_its_own_path_echoed() -> None:
    prints = calibrate([(p, problem(404, "Not Found", instance=p)) for p in PROBES])
    missing = problem(404, "Not Found", instance="/api/chat/stream")
    judgement = judge(missing, "/api/chat/stream", prints)
    assert judgement.presence is Presence.MISSING
    assert "unknown route" in judgement.evidence


def test_request_ids_and_timestamps_do_not_make_a_missing_route_look_present() -> None:
    """Fields that vary between probes, and digits anywhere, are not part of the fingerprint."""
    probes = [
        (p, problem(404, "Not Found", trace=f"req-{i}f9a", at=f"2025-09-07T13:10:0{i}Z"))
        for i, p in enumerate(PROBES)
    ]
    prints = calibrate(probes)
    later = problem(404, "Not Found", trace="req-77c1", at="2025-09-07T13:12:44Z")
    assert judge(later, "/api/agents/stream", prints).presence is Presence.MISSING


@pytest.mark.parametrize(
    ("media", "body"),
    [("text/plain; charset=utf-8", b"Not Found"), ("text/html", b"<html><h1>404</h1></html>")],
)
def test_text_or_html_not_found_versus_a_json_404(media: str, body: bytes) -> None:
    prints = calibrate([(p, Answer.of(404, media, body)) for p in PROBES])
    assert judge(Answer.of(404, media, body), "/api/tools", prints).presence is Presence.MISSING
    real = problem(404, "no such thread")
    assert judge(real, "/api/threads/thread_abcdef", prints).presence is Presence.PRESENT


def test_a_401_from_a_real_route_is_not_the_not_found_fingerprint() -> None:
    """Rejected credentials do not blind the inventory when routing comes before auth."""
    prints = calibrate([(p, Answer.of(404, "text/plain", b"Not Found")) for p in PROBES])
    refused = problem(401, "a bearer token is required")
    assert judge(refused, "/api/agents", prints).presence is Presence.PRESENT


def test_auth_before_routing_makes_presence_undecidable_not_missing() -> None:
    prints = calibrate([(p, problem(401, "token required")) for p in PROBES])
    assert prints[0].refuses_auth
    judgement = judge(problem(401, "token required"), "/api/agents", prints)
    assert judgement.presence is Presence.UNDECIDABLE


def test_405_where_the_spec_has_the_method_is_a_missing_method() -> None:
    prints = calibrate([(p, Answer.of(404, "text/plain", b"Not Found")) for p in PROBES])
    answer = Answer.of(405, "text/plain", b"Method Not Allowed")
    assert judge(answer, "/api/threads", prints, {"200": ()}).presence is Presence.METHOD_MISSING
    assert judge(answer, "/api/threads", prints, {"405": ()}).presence is Presence.PRESENT


def test_501_is_not_implemented() -> None:
    prints = calibrate([(p, Answer.of(404, "text/plain", b"Not Found")) for p in PROBES])
    answer = Answer.of(501, "application/json", b'{"detail": "Not Implemented"}')
    assert judge(answer, "/api/tools/execute", prints).presence is Presence.NOT_IMPLEMENTED


def test_a_catch_all_200_page_is_the_fingerprint_too() -> None:
    """A single-page app answering 200 index.html for every path: a 200 is not presence."""
    page = b"<!doctype html><title>app</title>"
    prints = calibrate([(p, Answer.of(200, "text/html", page)) for p in PROBES])
    assert judge(Answer.of(200, "text/html", page), "/api/agents", prints).presence is (
        Presence.MISSING
    )
    agents = Answer.of(200, "application/json", b'{"agents": []}')
    assert judge(agents, "/api/agents", prints).presence is Presence.PRESENT

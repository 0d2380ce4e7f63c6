"""Inventory requests from the spec: examples, links, and never someone else's object."""

from __future__ import annotations

from chatcontract.rest.samples import (
    Sample,
    build_sample,
    evaluate_link,
    inventory_order,
    operation_links,
    operation_parameters,
)

from .helpers import spec


def sample_for(label: str, known: dict[str, str], identifiers: tuple[str, ...] = ()) -> Sample:
    op = spec().operation(label)
    return build_sample(op, operation_parameters(spec(), op), known, identifiers)


def test_links_name_the_values_later_lookups_need() -> None:
    links = operation_links(spec(), spec().operation("createThread"))
    assert {(link.target, link.parameter) for link in links} >= {
        ("getThread", "thread_id"),
        ("deleteThread", "thread_id"),
    }
    assert evaluate_link("$response.body#/id", {"id": "thread_abc123"}) == "thread_abc123"
    assert evaluate_link("$response.body#/missing", {"id": "x"}) is None
    assert evaluate_link("$request.path.id", {"id": "x"}) is None


def test_known_values_fill_paths_queries_and_bodies() -> None:
    known = {"thread_id": "thread_made4us"}
    assert sample_for("GET /api/threads/{thread_id}", known).path == "/api/threads/thread_made4us"
    listing = sample_for("GET /api/chat/messages", known)
    assert listing.query == {"thread_id": "thread_made4us"}
    post = sample_for("POST /api/chat/messages", known)
    assert post.body["thread_id"] == "thread_made4us"
    assert post.media_type == "application/json"


def test_safe_lookups_fall_back_to_examples() -> None:
    sample = sample_for("GET /api/threads/{thread_id}", {}, ("thread_id",))
    assert sample.path == "/api/threads/thread_3f9a2c1b7d4e"


def test_unsafe_requests_never_target_an_example_id() -> None:
    """A DELETE with the spec's example id could delete a real thread on a shared staging."""
    for label in ("DELETE /api/threads/{thread_id}", "PUT /api/threads/{thread_id}"):
        sample = sample_for(label, {}, ("thread_id",))
        assert "thread_3f9a2c1b7d4e" not in sample.path
    post = sample_for("POST /api/chat/messages", {}, ("thread_id",))
    assert post.body["thread_id"] != "thread_3f9a2c1b7d4e"


def test_producers_run_first_and_deletions_last() -> None:
    ordered = [op.label for op in inventory_order(spec().operations, ["createThread"])]
    assert ordered[0] == "POST /api/threads"
    assert ordered[-1] == "DELETE /api/threads/{thread_id}"

"""The positive control: no auth verdict counts before valid credentials are shown to work."""

from __future__ import annotations

import asyncio

from chatcontract.reference.testing import ReferenceFactory
from chatcontract.report.model import Outcome
from chatcontract.rest.control import PositiveControl, positive_control

from .helpers import by_outcome, context, run, spec

OTHER_KEY = "an-issuer-whose-tokens-this-api-does-not-trust"


def test_valid_credentials_pass_the_control_for_every_user(reference_factory: ReferenceFactory):
    server = reference_factory()
    ctx = context(server.url)
    control = asyncio.run(positive_control(ctx))
    assert control.accepted is True
    assert control.outcome is Outcome.PASSED
    assert control.operation == "GET /api/agents"
    assert dict(control.statuses) == {"alice": 200, "bob": 200}
    assert ctx.services.control is control


def test_tokens_the_api_rejects_make_the_control_fail_with_the_status(
    reference_factory: ReferenceFactory,
) -> None:
    """A real issuer, but not the one this API trusts (staging vs production identity)."""
    api = reference_factory()
    issuer = reference_factory(signing_key=OTHER_KEY)
    ctx = context(api.url, env={"CHATCONTRACT_OAUTH_TOKEN_URL": issuer.url + "/oauth/token"})
    control = asyncio.run(positive_control(ctx))
    assert control.accepted is False
    assert control.reason == "credentials rejected: 401 from GET /api/agents for alice"
    assert control.outcome is Outcome.INCONCLUSIVE
    assert control.accepts("alice") is False


def test_a_token_endpoint_refusal_is_a_rejection_naming_no_secret(
    reference_factory: ReferenceFactory,
) -> None:
    server = reference_factory()
    ctx = context(server.url, env={"CHATCONTRACT_CLIENT_SECRET": "wrong-secret-value"})
    control = asyncio.run(positive_control(ctx))
    assert control.accepted is False
    assert control.reason.startswith("credentials rejected: token endpoint answered 401")
    assert "wrong-secret-value" not in control.reason


def test_dependent_rest_contracts_are_inconclusive_never_passed_or_failed(
    reference_factory: ReferenceFactory,
) -> None:
    api = reference_factory()
    issuer = reference_factory(signing_key=OTHER_KEY)
    ctx = context(
        api.url,
        env={"CHATCONTRACT_OAUTH_TOKEN_URL": issuer.url + "/oauth/token"},
        max_examples=3,
    )
    results = run(ctx, "rest")
    protected = {f"rest/{op.label}" for op in spec().rest_operations if not op.is_public}
    public = {f"rest/{op.label}" for op in spec().rest_operations if op.is_public}
    inconclusive = by_outcome(results, Outcome.INCONCLUSIVE)
    # Object-level isolation needs the same credentials (rest/isolation/...).
    isolation = {r.id for r in results if r.id.startswith("rest/isolation/")}
    assert isolation
    assert protected | {"rest/stateful-links"} | isolation == inconclusive
    for result in results:
        if result.id in inconclusive:
            assert result.reason.startswith("credentials rejected: 401")
    # Public operations need no credentials, so they are still judged.
    assert public == by_outcome(results, Outcome.PASSED)


def test_the_shared_value_reads_as_accepted_or_not_for_other_checkers() -> None:
    """The SSE and WebSocket checkers read ``accepted`` and ``outcome``; undecided is neither."""
    undecided = PositiveControl(None, "credentials not confirmed: GET /api/agents answered 500")
    assert undecided.outcome is Outcome.INCONCLUSIVE
    assert undecided.accepts("alice") is None
    assert not hasattr(undecided, "rejected")

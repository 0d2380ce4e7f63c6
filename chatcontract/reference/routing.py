"""Spec-derived HTTP routing: one route per spec path, one handler per operationId.

Each request passes the same gates in the same order, so behaviour at the
edges is uniform across operations: authentication (401), rate limit (429),
then validation against the spec through openapi-core (a malformed path
parameter is an unknown resource, 404; anything else invalid is 422).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatcontract.errors import ChatContractError
from chatcontract.reference.contract import Operation
from chatcontract.reference.problems import problem
from chatcontract.reference.services import Services
from chatcontract.reference.tokens import Principal, TokenError, bearer_from_header

__all__ = [
    "Call",
    "Handler",
    "build_routes",
    "handles",
    "unauthorized",
]

REALM = 'Bearer realm="chat"'


@dataclass(frozen=True, slots=True)
class Call:
    """A request that passed every gate, with its parameters and body unmarshalled."""

    request: Request
    services: Services
    operation: Operation
    principal: Principal | None
    path: Mapping[str, Any]
    query: Mapping[str, Any]
    body: Any

    @property
    def user(self) -> str:
        if self.principal is None:
            raise ChatContractError(f"{self.operation.operation_id} is public: no user")
        return self.principal.user


Handler = Callable[[Call], Awaitable[Response]]
_HANDLERS: dict[str, Handler] = {}


def handles(operation_id: str) -> Callable[[Handler], Handler]:
    """Register the handler of a spec operation."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[operation_id] = handler
        return handler

    return register


def unauthorized(detail: str, *, token_given: bool) -> Response:
    challenge = REALM
    if token_given:
        # RFC 6750 §3: say why, so a client can tell "log in" from "refresh".
        challenge += f', error="invalid_token", error_description="{detail}"'
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


Endpoint = Callable[[Request], Awaitable[Response]]


def _endpoint(services: Services, operation: Operation, handler: Handler) -> Endpoint:
    async def gate(request: Request) -> Response:
        principal = None
        if not operation.public:
            token = bearer_from_header(request.headers.get("authorization"))
            if token is None:
                return unauthorized("a bearer token is required", token_given=False)
            try:
                principal = services.authenticate(token)
            except TokenError as exc:
                return unauthorized(str(exc), token_given=True)
        if principal is not None and "429" in operation.statuses:
            limiter, with_retry_after = services.limiter_for(operation.operation_id)
            decision = limiter.hit(f"{principal.user}:{operation.operation_id}")
            if not decision.allowed:
                return problem(
                    429,
                    "rate limit exceeded",
                    headers=decision.headers(retry_after=with_retry_after),
                )
        body = await request.body()
        try:
            validated = services.contract.validate(request, body)
        except RecursionError:
            # The JSON decoder recurses per nesting level; a hostile body must get
            # the documented 422, not a 500 from the clean reference.
            return problem(422, "the request body is nested too deeply")
        if any(e.location == "path" for e in validated.errors):
            return problem(404, "no such resource", instance=request.url.path)
        if validated.errors:
            return problem(
                422,
                "the request does not match the contract",
                errors=[{"pointer": e.pointer, "detail": e.detail} for e in validated.errors],
            )
        return await handler(
            Call(
                request=request,
                services=services,
                operation=operation,
                principal=principal,
                path=validated.path,
                query=validated.query,
                body=validated.body,
            )
        )

    return gate


def build_routes(services: Services, *, skip: frozenset[str] = frozenset()) -> list[Route]:
    """Routes for every spec operation except ``skip`` (operationIds a fault removes)."""
    by_path: defaultdict[str, dict[str, Endpoint]] = defaultdict(dict)
    for operation in services.contract.operations:
        if operation.operation_id in skip:
            continue
        handler = _HANDLERS.get(operation.operation_id)
        if handler is None:
            raise ChatContractError(f"no handler for spec operation {operation.operation_id}")
        by_path[operation.path][operation.method.upper()] = _endpoint(services, operation, handler)
    routes = []
    for path, gates in by_path.items():
        route = Route(path, _dispatch(gates), methods=list(gates))
        # Starlette adds HEAD to every GET route; the contract declares no HEAD, so
        # HEAD gets the same 405 + Allow as any other undeclared method.
        if "HEAD" not in gates and route.methods is not None:
            route.methods.discard("HEAD")
        routes.append(route)
    return routes


def _dispatch(gates: Mapping[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await gates[request.method](request)

    return endpoint

"""Authentication, access, request rules and idempotency around every `/v1` route, as one
route class.

`ApiRoute` wraps each endpoint: authenticate the bearer key (and count its rate limit), check the
route's entry in the access table, apply the request rules (declared query parameters, no control
characters, the body's media type and strict JSON), then for a POST with `Idempotency-Key` claim
the key, replay a stored response, or run the endpoint and store what it answered. All of that
happens before FastAPI validates a parameter, so a caller who may not call a route learns nothing
about its parameters. Endpoints never implement idempotency themselves; the few that must store
the response inside their own transaction (payments) call `IdempotencyService.complete_in`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from clearport.access.domain import Origin, Principal
from clearport.core.redaction import redact_secrets
from clearport.http.access_rules import RouteAccess, access_for
from clearport.http.errors import error_response_for
from clearport.http.request_rules import ApiRequest, RequestRules
from clearport.idempotency.service import ClaimContended, IdempotencyClaim, Replay
from clearport.wiring import Container


def container_of(request: Request) -> Container:
    return cast(Container, request.app.state.container)


def origin_of(request: Request) -> Origin:
    return Origin(ip=request.client.host if request.client else "unknown")


def principal_of(request: Request) -> Principal:
    return cast(Principal, request.state.principal)


_CLAIMS_IN_TRANSACTION = "__clearport_claims_in_transaction__"


def claims_in_transaction(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint whose service claims its Idempotency-Key in its own first transaction
    (`IdempotencyService.claim_in`): the claim then costs no commit of its own (decision
    0912). Put it under the router's decorator."""
    setattr(endpoint, _CLAIMS_IN_TRANSACTION, True)
    return endpoint


def claim_of(request: Request) -> IdempotencyClaim | None:
    return cast(IdempotencyClaim | None, getattr(request.state, "idempotency", None))


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = super().get_route_handler()
        # Built with the route, so a route missing from the access table fails at start-up.
        access = access_for(self.methods or set(), self.path)
        rules = RequestRules.of(self)
        deferred = bool(getattr(self.endpoint, _CLAIMS_IN_TRANSACTION, False))

        async def handler(request: Request) -> Response:
            request = ApiRequest(request.scope, request.receive)  # before anyone reads the body
            try:
                return await _handle(request, endpoint, access, rules, deferred=deferred)
            except Exception as exc:  # mapped here so idempotency sees the final response
                return error_response_for(request, exc)

        return handler


async def _handle(
    request: Request,
    endpoint: Callable[[Request], Awaitable[Response]],
    access: RouteAccess,
    rules: RequestRules,
    *,
    deferred: bool = False,
) -> Response:
    container = container_of(request)
    principal = await container.authenticator.authenticate(
        request.headers.get("authorization"), origin_of(request)
    )
    request.state.principal = principal
    access.check(principal)
    await rules.check(request)
    key = request.headers.get("idempotency-key")
    if request.method != "POST" or key is None:
        return await _run(request, endpoint)
    service = container.idempotency
    body = await request.body()
    request_hash = service.request_hash(request.method, request.url.path, body)
    if deferred:
        claim = service.deferred(principal.idempotency_scope, key, request_hash)
        try:
            return await _answer(request, endpoint, claim)
        except ClaimContended:
            pass  # someone holds or held the key: the ordinary claim says what to do
    outcome = await service.begin(principal.idempotency_scope, key, request_hash)
    if isinstance(outcome, Replay):
        return Response(
            outcome.body,
            status_code=outcome.status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    return await _answer(request, endpoint, outcome)


async def _answer(
    request: Request,
    endpoint: Callable[[Request], Awaitable[Response]],
    claim: IdempotencyClaim,
) -> Response:
    """Run the endpoint under `claim` and store (or release) what it answered."""
    service = container_of(request).idempotency
    request.state.idempotency = claim
    try:
        response = await _run(request, endpoint)
    except BaseException:
        await service.abandon(claim)
        raise
    # A response that carried a secret (a new API key) is stored, and replayed, with the secret
    # masked: secrets never rest in the idempotency store. Card numbers are not masked here:
    # responses never hold one (the sentinel scan proves it), while masking Luhn-valid digit
    # runs would corrupt legitimate fields such as network references on replay.
    if claim.completed_in_transaction or claim.keep_open:
        return response  # stored with the endpoint's own writes: no second pass over the body
    stored = redact_secrets(bytes(response.body).decode()).encode()
    await service.finish(claim, response.status_code, stored)
    return response


async def _run(request: Request, endpoint: Callable[[Request], Awaitable[Response]]) -> Response:
    try:
        return await endpoint(request)
    except ClaimContended:
        raise  # for `_handle`, which claims the key the ordinary way
    except Exception as exc:
        return error_response_for(request, exc)

"""The access table (decision 0013) against the server: it names every served operation, a
caller it refuses gets 403 whatever the parameters, and a caller it lets through is not refused
by the service behind it either (the table mirrors the services' checks, never widens them)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter

from clearport.access.domain import Principal, PrincipalKind, Role
from clearport.core.errors import InvariantViolation, PermissionDenied
from clearport.core.ids import new_id
from clearport.http.access_rules import ROUTE_ACCESS
from clearport.http.context import ApiRoute
from tests.http_support import operations_of, served_document
from tests.support import Api

# How the path parameters' ids are spelled, so a read reaches its service (which answers 404).
ID_PREFIXES = {
    "merchant_id": "mer",
    "key_id": "key",
    "payment_id": "pay",
    "refund_id": "rfd",
    "event_id": "evt",
    "token_id": "tok",
    "run_id": "sr",
    "settlement_id": "stl",
    "payout_id": "po",
}
BAD_QUERY = "?starting_after=zzz&limit=0&colour=red"


def _principals(api: Api) -> dict[str, tuple[Principal, str]]:
    admin = api.operator("admin")
    merchant_id, secret = api.merchant(admin)
    callers = {"merchant": (Principal(PrincipalKind.MERCHANT, "k", merchant_id), secret)}
    for role in Role:
        callers[role] = (Principal(PrincipalKind.OPERATOR, "k", role=role), api.operator(role))
    return callers


def _refused(method: str, path: str, principal: Principal) -> bool:
    try:
        ROUTE_ACCESS[(method, path)].check(principal)
    except PermissionDenied:
        return True
    return False


def test_the_table_names_exactly_the_served_operations(api: Api) -> None:
    served = {(o.method.upper(), o.path) for o in operations_of(served_document(api))}
    assert served == set(ROUTE_ACCESS)


def test_a_route_missing_from_the_table_fails_when_it_is_built() -> None:
    router = APIRouter(route_class=ApiRoute)

    async def endpoint() -> None: ...

    with pytest.raises(InvariantViolation, match="GET /v1/unlisted"):
        router.get("/v1/unlisted")(endpoint)


def test_a_refused_caller_gets_403_before_any_parameter_is_read(api: Api) -> None:
    callers = _principals(api)
    failures = []
    refusals = 0
    for (method, path), _ in ROUTE_ACCESS.items():
        url = path.replace("{", "bad_").replace("}", "") + BAD_QUERY
        for name, (principal, key) in callers.items():
            if not _refused(method, path, principal):
                continue
            refusals += 1
            response = api.call(
                method,
                url,
                key,
                content=b'{"colour": "red\\u0000", "colour": 1',
                headers={"Content-Type": "text/plain"},
            )
            error = response.json()["error"]
            if (response.status_code, error["type"]) != (403, "permission_error"):
                failures.append(f"{name} {method} {path}: {response.status_code} {error['code']}")
    assert refusals > 60  # merchant keys on operator routes, operators on merchant-key routes, ...
    assert failures == []


def test_a_merchant_key_with_a_bad_cursor_on_an_operator_path_is_403(api: Api) -> None:
    _, secret = api.merchant()
    response = api.call("GET", "/v1/merchants?starting_after=zzz", secret)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_the_service_lets_through_whom_the_table_lets_through(api: Api) -> None:
    callers = _principals(api)
    failures = []
    for (method, path), _ in ROUTE_ACCESS.items():
        url = path
        for name, prefix in ID_PREFIXES.items():
            url = url.replace("{" + name + "}", new_id(prefix))
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        for name, (principal, key) in callers.items():
            if _refused(method, path, principal):
                continue
            response = api.call(method, url, key, json=body)
            if response.status_code == 403 or response.status_code >= 500:
                failures.append(f"{name} {method} {path}: {response.status_code}")
    assert failures == []


def test_an_empty_patch_is_no_way_round_the_merchant_permissions(api: Api) -> None:
    admin = api.operator("admin")
    merchant_id, secret = api.merchant(admin)
    for key in (secret, api.operator("support"), api.operator("security")):
        response = api.call("PATCH", f"/v1/merchants/{merchant_id}", key, json={})
        assert response.status_code == 403, response.text

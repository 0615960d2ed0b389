"""The access table's entries as principals meet them (decision 0013)."""

from __future__ import annotations

import pytest

from clearport.access.domain import Permission, Principal, PrincipalKind, Role, role_allows
from clearport.core.errors import InvariantViolation, PermissionDenied
from clearport.http.access_rules import (
    MERCHANT_KEYS,
    ROUTE_ACCESS,
    RouteAccess,
    access_for,
    merchant_keys_and_operators,
    operators,
)

MERCHANT = Principal(PrincipalKind.MERCHANT, "key_m", merchant_id="mer_1")


def operator(role: Role) -> Principal:
    return Principal(PrincipalKind.OPERATOR, "key_o", role=role)


def allowed(access: RouteAccess, principal: Principal) -> bool:
    try:
        access.check(principal)
    except PermissionDenied:
        return False
    return True


def test_merchant_keys_only() -> None:
    assert allowed(MERCHANT_KEYS, MERCHANT)
    for role in Role:
        with pytest.raises(PermissionDenied, match="needs a merchant secret key"):
            MERCHANT_KEYS.check(operator(role))


def test_merchant_keys_and_operators_holding_the_permission() -> None:
    access = merchant_keys_and_operators(Permission.FINANCE_READ)
    assert allowed(access, MERCHANT)
    for role in Role:
        assert allowed(access, operator(role)) == role_allows(role, Permission.FINANCE_READ)


def test_operators_holding_any_one_of_the_permissions() -> None:
    access = operators(Permission.MERCHANTS_STATUS, Permission.MERCHANTS_TERMS)
    with pytest.raises(PermissionDenied, match="does not have the role"):
        access.check(MERCHANT)
    assert {role for role in Role if allowed(access, operator(role))} == {
        Role.ADMIN,
        Role.FINANCE,
    }


def test_a_route_missing_from_the_table_is_refused() -> None:
    assert access_for({"GET"}, "/v1/payments") is ROUTE_ACCESS[("GET", "/v1/payments")]
    with pytest.raises(InvariantViolation, match="ROUTE_ACCESS"):
        access_for({"GET"}, "/v1/unlisted")
    with pytest.raises(InvariantViolation, match="ROUTE_ACCESS"):
        access_for({"GET", "DELETE"}, "/v1/payments")  # DELETE has no entry
    with pytest.raises(InvariantViolation, match="ROUTE_ACCESS"):
        access_for(set(), "/v1/payments")

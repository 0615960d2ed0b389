"""The role-grant rule: a key creates operator keys only for roles within its own permissions."""

from __future__ import annotations

import itertools

from clearport.access.domain import (
    ROLE_PERMISSIONS,
    SYSTEM_CLI,
    Permission,
    Principal,
    PrincipalKind,
    Role,
    role_may_grant,
)

# The matrix docs/decisions/0018-role-grants.md and the comment beside the rule write down.
MATRIX = {
    Role.ADMIN: {Role.ADMIN, Role.SUPPORT, Role.FINANCE, Role.SECURITY},
    Role.SUPPORT: set(),
    Role.FINANCE: set(),
    Role.SECURITY: {Role.SUPPORT, Role.SECURITY},
}


def test_the_written_matrix_is_the_rule() -> None:
    for granter, target in itertools.product(Role, Role):
        assert role_may_grant(granter, target) == (target in MATRIX[granter]), (granter, target)


def test_no_grant_exceeds_the_granter() -> None:
    for granter, target in itertools.product(Role, Role):
        if role_may_grant(granter, target):
            assert ROLE_PERMISSIONS[target] <= ROLE_PERMISSIONS[granter]
            assert Permission.KEYS_MANAGE in ROLE_PERMISSIONS[granter]


def test_principals() -> None:
    assert all(SYSTEM_CLI.may_grant(role) for role in Role)
    merchant = Principal(PrincipalKind.MERCHANT, "key_x", merchant_id="mer_x")
    assert not any(merchant.may_grant(role) for role in Role)
    security = Principal(PrincipalKind.OPERATOR, "key_y", role=Role.SECURITY)
    assert [r for r in Role if security.may_grant(r)] == [Role.SUPPORT, Role.SECURITY]

"""Who may call each route: the role-by-endpoint matrix, written down once (decision 0013).

`ApiRoute` looks its route up here when it is built, so a route missing from the table stops
the application at start-up, and enforces the entry right after authentication, before a single
parameter is validated: a key that may not call an operation learns nothing about its parameters
(a merchant key with a bad cursor on an operator path gets 403, not 400). The services keep their
own checks (`Principal.require`, `require_merchant`, `merchant_scope`); this table mirrors them,
and `tests/integration/test_http_access.py` holds the two against each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from clearport.access.domain import Permission, Principal
from clearport.core.errors import InvariantViolation, PermissionDenied


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """Merchant secret keys may call the route if `merchant_keys` (the services scope them to
    their own objects); operator keys if their role holds one of `operator_permissions`."""

    merchant_keys: bool
    operator_permissions: tuple[Permission, ...]

    def check(self, principal: Principal) -> None:
        """Refuse `principal` with the services' own PermissionDenied."""
        if self.merchant_keys and principal.merchant_id is not None:
            return
        if not self.operator_permissions:
            principal.require_merchant()
            return
        for permission in self.operator_permissions[:-1]:
            with suppress(PermissionDenied):
                principal.require(permission)
                return
        principal.require(self.operator_permissions[-1])


MERCHANT_KEYS = RouteAccess(merchant_keys=True, operator_permissions=())


def operators(*permissions: Permission) -> RouteAccess:
    """Operators holding any one of `permissions`; no merchant key."""
    return RouteAccess(merchant_keys=False, operator_permissions=permissions)


def merchant_keys_and_operators(permission: Permission) -> RouteAccess:
    """A merchant key for its own objects; an operator holding `permission` for everyone's."""
    return RouteAccess(merchant_keys=True, operator_permissions=(permission,))


_MERCHANTS_READ = Permission.MERCHANTS_READ
_FINANCE_READ = Permission.FINANCE_READ
_FINANCE_WRITE = Permission.FINANCE_WRITE
_KEYS_MANAGE = Permission.KEYS_MANAGE
# webhooks/endpoints.py: a merchant key its own endpoints; webhooks.manage (admin) all of them
_WEBHOOKS = merchant_keys_and_operators(Permission.WEBHOOKS_MANAGE)

# (method, path template) -> who may call it. Each entry is the check the service method behind
# the route makes first; the comment names it where it is not a plain `require(...)`.
ROUTE_ACCESS: Mapping[tuple[str, str], RouteAccess] = {
    # merchants/service.py
    ("POST", "/v1/merchants"): operators(Permission.MERCHANTS_CREATE),
    ("GET", "/v1/merchants"): operators(_MERCHANTS_READ),
    ("GET", "/v1/merchants/{merchant_id}"): operators(_MERCHANTS_READ),
    # status, name and metadata need merchants.status, the terms merchants.terms: the service
    # decides from the body which one; a caller with neither may not patch at all.
    ("PATCH", "/v1/merchants/{merchant_id}"): operators(
        Permission.MERCHANTS_STATUS, Permission.MERCHANTS_TERMS
    ),
    ("POST", "/v1/merchants/{merchant_id}/keys"): operators(_KEYS_MANAGE),
    ("GET", "/v1/merchants/{merchant_id}/keys"): operators(_KEYS_MANAGE),
    ("DELETE", "/v1/merchants/{merchant_id}/keys/{key_id}"): operators(_KEYS_MANAGE),
    ("POST", "/v1/operator_keys"): operators(_KEYS_MANAGE),
    ("DELETE", "/v1/operator_keys/{key_id}"): operators(_KEYS_MANAGE),
    ("GET", "/v1/merchants/{merchant_id}/payment_settings"): operators(_MERCHANTS_READ),
    ("PUT", "/v1/merchants/{merchant_id}/payment_settings"): operators(Permission.MERCHANTS_TERMS),
    # vault/bank_accounts.py
    ("PUT", "/v1/merchants/{merchant_id}/bank_account"): operators(_FINANCE_WRITE),
    ("GET", "/v1/merchants/{merchant_id}/bank_account"): operators(_MERCHANTS_READ),
    # audit/service.py
    ("GET", "/v1/audit_events"): operators(Permission.AUDIT_READ),
    # vault/tokens.py: require_merchant
    ("POST", "/v1/tokens"): MERCHANT_KEYS,
    ("GET", "/v1/tokens/{token_id}"): MERCHANT_KEYS,
    # payments/authorize.py and operations.py: require_merchant
    ("POST", "/v1/payments"): MERCHANT_KEYS,
    ("POST", "/v1/payments/{payment_id}/capture"): MERCHANT_KEYS,
    ("POST", "/v1/payments/{payment_id}/void"): MERCHANT_KEYS,
    ("POST", "/v1/payments/{payment_id}/refunds"): MERCHANT_KEYS,
    # payments/queries.py and events/service.py: merchant_scope(merchants.read)
    ("GET", "/v1/payments"): merchant_keys_and_operators(_MERCHANTS_READ),
    ("GET", "/v1/payments/{payment_id}"): merchant_keys_and_operators(_MERCHANTS_READ),
    ("GET", "/v1/refunds"): merchant_keys_and_operators(_MERCHANTS_READ),
    ("GET", "/v1/refunds/{refund_id}"): merchant_keys_and_operators(_MERCHANTS_READ),
    ("GET", "/v1/events"): merchant_keys_and_operators(_MERCHANTS_READ),
    ("GET", "/v1/events/{event_id}"): merchant_keys_and_operators(_MERCHANTS_READ),
    # ledger/service.py: a merchant its own balance, an operator with finance.read any
    ("GET", "/v1/balance"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/balance_transactions"): merchant_keys_and_operators(_FINANCE_READ),
    # settlement/service/run.py, payouts.py and queries.py (its _scope: finance.read)
    ("POST", "/v1/settlement_runs"): operators(_FINANCE_WRITE),
    ("GET", "/v1/settlement_runs/{run_id}"): operators(_FINANCE_READ),
    ("GET", "/v1/settlements"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/settlements/{settlement_id}"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/settlements/{settlement_id}/items"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/payouts"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/payouts/{payout_id}"): merchant_keys_and_operators(_FINANCE_READ),
    ("POST", "/v1/payouts/{payout_id}/mark"): operators(_FINANCE_WRITE),
    # webhooks/endpoints.py: its _scope (a merchant key, or webhooks.manage)
    ("POST", "/v1/webhook_endpoints"): _WEBHOOKS,
    ("GET", "/v1/webhook_endpoints"): _WEBHOOKS,
    ("GET", "/v1/webhook_endpoints/{endpoint_id}"): _WEBHOOKS,
    ("PATCH", "/v1/webhook_endpoints/{endpoint_id}"): _WEBHOOKS,
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"): _WEBHOOKS,
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): _WEBHOOKS,
    ("GET", "/v1/webhook_endpoints/{endpoint_id}/deliveries"): _WEBHOOKS,
    ("POST", "/v1/events/{event_id}/redeliver"): _WEBHOOKS,
    # disputes/service.py: operators create and close (finance.write); the merchant gives its
    # evidence, an operator on its behalf (merchant_scope(finance.write)); reads scope by
    # finance.read
    ("POST", "/v1/disputes"): operators(_FINANCE_WRITE),
    ("GET", "/v1/disputes"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/disputes/{dispute_id}"): merchant_keys_and_operators(_FINANCE_READ),
    ("POST", "/v1/disputes/{dispute_id}"): merchant_keys_and_operators(_FINANCE_WRITE),
    ("POST", "/v1/disputes/{dispute_id}/close"): operators(_FINANCE_WRITE),
    # adjustments/service.py
    ("POST", "/v1/adjustments"): operators(_FINANCE_WRITE),
    ("GET", "/v1/adjustments"): merchant_keys_and_operators(_FINANCE_READ),
    ("GET", "/v1/adjustments/{adjustment_id}"): merchant_keys_and_operators(_FINANCE_READ),
    # files/service.py: a merchant uploads its own, an operator with finance.write the
    # platform's; reads scope by finance.read
    ("POST", "/v1/files"): merchant_keys_and_operators(_FINANCE_WRITE),
    ("GET", "/v1/files/{file_id}"): merchant_keys_and_operators(_FINANCE_READ),
    # reconciliation/service.py
    ("POST", "/v1/reconciliation_runs"): operators(_FINANCE_WRITE),
    ("GET", "/v1/reconciliation_runs"): operators(_FINANCE_READ),
    ("GET", "/v1/reconciliation_runs/{run_id}"): operators(_FINANCE_READ),
    ("GET", "/v1/reconciliation_exceptions"): operators(_FINANCE_READ),
    ("GET", "/v1/reconciliation_exceptions/{exception_id}"): operators(_FINANCE_READ),
    ("POST", "/v1/reconciliation_exceptions/{exception_id}/resolve"): operators(_FINANCE_WRITE),
    # connectors/service.py
    ("POST", "/v1/connectors"): operators(Permission.CONNECTORS_MANAGE),
    ("GET", "/v1/connectors"): operators(Permission.CONNECTORS_READ),
    ("GET", "/v1/connectors/{connector_id}"): operators(Permission.CONNECTORS_READ),
    ("PATCH", "/v1/connectors/{connector_id}"): operators(Permission.CONNECTORS_MANAGE),
    # rulesets/service.py (routing and risk rule sets alike)
    ("POST", "/v1/routing_rule_sets"): operators(Permission.ROUTING_MANAGE),
    ("GET", "/v1/routing_rule_sets"): operators(Permission.ROUTING_READ),
    ("GET", "/v1/routing_rule_sets/{rule_set_id}"): operators(Permission.ROUTING_READ),
    ("POST", "/v1/routing_rule_sets/{rule_set_id}/activate"): operators(Permission.ROUTING_MANAGE),
    ("POST", "/v1/risk_rule_sets"): operators(Permission.ROUTING_MANAGE),
    ("GET", "/v1/risk_rule_sets"): operators(Permission.ROUTING_READ),
    ("GET", "/v1/risk_rule_sets/{rule_set_id}"): operators(Permission.ROUTING_READ),
    ("POST", "/v1/risk_rule_sets/{rule_set_id}/activate"): operators(Permission.ROUTING_MANAGE),
    # replay/service.py
    ("POST", "/v1/routing_simulations"): operators(Permission.ROUTING_SIMULATE),
}


def access_for(methods: set[str], path: str) -> RouteAccess:
    """The one entry for a route (all its methods share it); a route without one is a
    programming error, raised while the routers are built."""
    entries = [ROUTE_ACCESS.get((method, path)) for method in sorted(methods)]
    first = entries[0] if entries else None
    if first is None or any(entry != first for entry in entries):
        listed = ", ".join(f"{method} {path}" for method in sorted(methods))
        raise InvariantViolation(
            f"{listed}: every API route needs one entry in http/access_rules.ROUTE_ACCESS."
        )
    return first

"""Merchants: list and look-up, create, detail (terms, payout settings, masked bank account,
keys, latest payments), suspend / reactivate / close, keys (a new secret shown once)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from clearport.access.domain import Permission, role_allows
from clearport.console.forms import PAGE_SIZE, choice, form_of, integer, listing, page_of, query
from clearport.console.web import (
    PREFIX,
    ConsoleRoute,
    container_of,
    origin_of,
    page,
    principal_of,
)
from clearport.core.errors import NotFound, PermissionDenied
from clearport.core.pagination import PageRequest
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.service import MerchantPatch, NewMerchant

router = APIRouter(prefix=f"{PREFIX}/merchants", route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
async def merchants(request: Request) -> Response:
    wanted = query(request, "id")
    if wanted is not None:
        return RedirectResponse(f"{PREFIX}/merchants/{_merchant_id(wanted)}", status_code=303)
    found = await container_of(request).merchants.list(
        principal_of(request), page_of(request, "mer")
    )
    return page(request, "merchants.html", title="Merchants", **listing(found, request))


@router.post("")
async def create_merchant(request: Request) -> Response:
    form = await form_of(request)
    merchant = await container_of(request).merchants.create(
        principal_of(request),
        origin_of(request),
        NewMerchant(
            name=form.get("name", ""),
            country=form.get("country", ""),
            mcc=form.get("mcc", ""),
            default_currency=form.get("default_currency", ""),
        ),
    )
    return RedirectResponse(f"{PREFIX}/merchants/{merchant.id}?created=1", status_code=303)


@router.get("/{merchant_id}")
async def merchant(request: Request, merchant_id: str) -> Response:
    return await _detail(request, _merchant_id(merchant_id))


@router.post("/{merchant_id}/status")
async def set_status(request: Request, merchant_id: str) -> Response:
    status = choice(await form_of(request), "status", tuple(MerchantStatus))
    await container_of(request).merchants.update(
        principal_of(request),
        origin_of(request),
        _merchant_id(merchant_id),
        MerchantPatch(status=status),
    )
    return RedirectResponse(
        f"{PREFIX}/merchants/{merchant_id}?status={status.value}", status_code=303
    )


@router.post("/{merchant_id}/payout_settings")
async def set_payout_settings(request: Request, merchant_id: str) -> Response:
    form = await form_of(request)
    delay = integer(form.get("payout_delay_days"), "payout_delay_days")
    await container_of(request).merchants.update(
        principal_of(request),
        origin_of(request),
        _merchant_id(merchant_id),
        MerchantPatch(payout_delay_days=delay),
    )
    return RedirectResponse(f"{PREFIX}/merchants/{merchant_id}?terms=1", status_code=303)


@router.post("/{merchant_id}/keys")
async def create_key(request: Request, merchant_id: str) -> Response:
    issued = await container_of(request).merchants.create_key(
        principal_of(request), origin_of(request), _merchant_id(merchant_id), None
    )
    # The secret is on this answer only (POST, no-store): a reload does not show it again.
    return await _detail(request, merchant_id, new_secret=issued.secret, new_key=issued.key.id)


@router.post("/{merchant_id}/keys/{key_id}/revoke")
async def revoke_key(request: Request, merchant_id: str, key_id: str) -> Response:
    await container_of(request).merchants.revoke_key(
        principal_of(request), origin_of(request), _merchant_id(merchant_id), key_id
    )
    return RedirectResponse(f"{PREFIX}/merchants/{merchant_id}?revoked={key_id}", status_code=303)


async def _detail(request: Request, merchant_id: str, **extra: Any) -> Response:
    container, actor = container_of(request), principal_of(request)
    found = await container.merchants.get(actor, merchant_id)
    keys = None
    if actor.role is not None and role_allows(actor.role, Permission.KEYS_MANAGE):
        keys = (
            await container.merchants.list_keys(actor, merchant_id, PageRequest(PAGE_SIZE))
        ).data
    try:
        bank_account = await container.vault.get_bank_account(actor, merchant_id)
    except (NotFound, PermissionDenied):
        bank_account = None
    payments = await container.payments.list(actor, PageRequest(10), {"merchant": merchant_id})
    notice = None
    if request.query_params.get("created"):
        notice = "Merchant created."
    elif status := request.query_params.get("status"):
        notice = f"Status changed to {status}."
    return page(
        request,
        "merchant.html",
        title=found.name,
        merchant=found,
        keys=keys,
        bank_account=bank_account,
        payments=payments.data,
        notice=notice,
        **extra,
    )


def _merchant_id(value: str) -> str:
    if not value.startswith("mer_") or len(value) > 64 or not value.replace("_", "").isalnum():
        raise NotFound(f"No such merchant: '{value[:64]}'.")
    return value

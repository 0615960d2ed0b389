"""Money after the payment: disputes (queue with ageing, answer with evidence, close),
reconciliation exceptions (queue with ageing, resolve), settlements and payouts (payout status
changes: finance)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from clearport.console.forms import PAGE_SIZE, choice, form_of, integer, listing, page_of, query
from clearport.console.web import (
    PREFIX,
    ConsoleRoute,
    container_of,
    origin_of,
    page,
    principal_of,
)
from clearport.core.errors import InvalidRequest
from clearport.core.pagination import PageRequest
from clearport.disputes.domain import (
    AWAITING_EVIDENCE,
    EVIDENCE_TEXT_FIELDS,
    MAX_EVIDENCE_TEXT,
    OPEN,
    DisputeStatus,
    Outcome,
)
from clearport.reconciliation.domain import ACTIONS, ExceptionKind, ExceptionStatus, Resolution
from clearport.settlement.domain import PAYOUT_TRANSITIONS

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

_RUNS_SHOWN = 10


# --- disputes ------------------------------------------------------------------------------------


@router.get("/disputes")
async def disputes(request: Request) -> Response:
    status = query(request, "status")
    if status is not None and status not in {s.value for s in DisputeStatus}:
        raise InvalidRequest("'status' is not a dispute status.", field="status")
    found = await container_of(request).disputes.list(
        principal_of(request), page_of(request, "dp"), {"status": status}
    )
    return page(
        request,
        "disputes.html",
        title="Disputes",
        now=container_of(request).clock.now(),
        statuses=[s.value for s in DisputeStatus],
        status=status,
        **listing(found, request),
    )


@router.get("/disputes/{dispute_id}")
async def dispute(request: Request, dispute_id: str) -> Response:
    found = await container_of(request).disputes.get(principal_of(request), dispute_id)
    notice = {
        "answered": "Evidence submitted: the dispute is under review.",
        "saved": "Evidence saved.",
        "closed": "Dispute closed.",
    }.get(request.query_params.get("done", ""))
    return page(
        request,
        "dispute.html",
        title=found.id,
        dispute=found,
        fields=EVIDENCE_TEXT_FIELDS,
        outcomes=[o.value for o in Outcome],
        # The domain's own sets: what may still be answered, what may still be closed.
        answerable=found.status in AWAITING_EVIDENCE,
        closable=found.status in OPEN,
        notice=notice,
    )


@router.post("/disputes/{dispute_id}/evidence")
async def answer_dispute(request: Request, dispute_id: str) -> Response:
    form = await form_of(request, max_chars=MAX_EVIDENCE_TEXT)
    evidence = {name: form[name] for name in EVIDENCE_TEXT_FIELDS if form.get(name)}
    submit = form.get("submit") == "true"
    await container_of(request).disputes.update(
        principal_of(request), origin_of(request), dispute_id, evidence or None, submit
    )
    done = "answered" if submit else "saved"
    return RedirectResponse(f"{PREFIX}/disputes/{dispute_id}?done={done}", status_code=303)


@router.post("/disputes/{dispute_id}/close")
async def close_dispute(request: Request, dispute_id: str) -> Response:
    outcome = choice(await form_of(request), "outcome", tuple(Outcome))
    await container_of(request).disputes.close(
        principal_of(request), origin_of(request), dispute_id, outcome
    )
    return RedirectResponse(f"{PREFIX}/disputes/{dispute_id}?done=closed", status_code=303)


# --- reconciliation exceptions -------------------------------------------------------------------


@router.get("/reconciliation")
async def exceptions(request: Request) -> Response:
    older = integer(query(request, "older_than_days"), "older_than_days")
    if older is not None and not 0 <= older <= 3650:
        raise InvalidRequest("'older_than_days' is 0 to 3650.", field="older_than_days")
    status, kind = query(request, "status") or ExceptionStatus.OPEN.value, query(request, "kind")
    if status not in {s.value for s in ExceptionStatus}:
        raise InvalidRequest("'status' is open or resolved.", field="status")
    if kind is not None and kind not in {k.value for k in ExceptionKind}:
        raise InvalidRequest("'kind' is not a kind of exception.", field="kind")
    filters = {"status": status, "kind": kind, "older_than_days": older}
    found = await container_of(request).reconciliation_queue.list_exceptions(
        principal_of(request), page_of(request, "rcx"), filters
    )
    return page(
        request,
        "reconciliation.html",
        title="Reconciliation exceptions",
        now=container_of(request).clock.now(),
        actions=[a.value for a in ACTIONS],
        statuses=[s.value for s in ExceptionStatus],
        kinds=[k.value for k in ExceptionKind],
        form=filters,
        **listing(found, request),
    )


@router.post("/reconciliation/{exception_id}/resolve")
async def resolve(request: Request, exception_id: str) -> Response:
    form = await form_of(request)
    # The resolutions a person chooses; the others are the run's own.
    action = choice(form, "action", (Resolution.ACCEPT, Resolution.ADJUST, Resolution.WRITE_OFF))
    await container_of(request).reconciliation_queue.resolve(
        principal_of(request), origin_of(request), exception_id, action, form.get("note", "")
    )
    return RedirectResponse(f"{PREFIX}/reconciliation?resolved={exception_id}", status_code=303)


# --- settlements and payouts ---------------------------------------------------------------------


@router.get("/settlements")
async def settlements(request: Request) -> Response:
    container, actor = container_of(request), principal_of(request)
    found = await container.settlement.list_settlements(actor, page_of(request, "stl"))
    payouts = await container.settlement.list_payouts(actor, PageRequest(PAGE_SIZE))
    runs, payout_files = await container.settlement.list_runs(actor, PageRequest(_RUNS_SHOWN))
    return page(
        request,
        "settlements.html",
        title="Settlements & payouts",
        runs=runs.data,
        payout_files=payout_files,
        payouts=payouts.data,
        # The buttons a payout shows: the transitions the domain allows that an operator marks.
        marks={status: sorted(t & {"paid", "failed"}) for status, t in PAYOUT_TRANSITIONS.items()},
        **listing(found, request),
    )


@router.post("/payout_files/{file_id}")
async def download_payout_file(request: Request, file_id: str) -> Response:
    """A POST (with the form's CSRF token): the file holds account numbers, and its download is
    audited; never cached (the console's no-store header)."""
    found, data = await container_of(request).settlement.download_payout_file(
        principal_of(request), origin_of(request), file_id
    )
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{found.object_key.rsplit("/", 1)[-1]}"'
        },
    )


@router.post("/payouts/{payout_id}/status")
async def payout_status(request: Request, payout_id: str) -> Response:
    form = await form_of(request)
    status = form.get("status", "")  # the service says which statuses and transitions exist
    await container_of(request).settlement.mark_payout(
        principal_of(request),
        origin_of(request),
        payout_id,
        status,
        form.get("failure_code") or None,
    )
    return RedirectResponse(f"{PREFIX}/settlements?payout={payout_id}", status_code=303)

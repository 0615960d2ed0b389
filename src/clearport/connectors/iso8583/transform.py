"""ISO 8583:1987 messages (pyiso8583, `iso8583.specs.default_ascii`) built from our calls, and
answers mapped to ours.

    call        request                        answer   what the host matches the original by
    authorize   0100, DE3 000000               0110
    sale        0200, DE3 000000               0210
    capture     0220 completion, DE3 000000    0230     DE48 OR, DE90
    refund      0200, DE3 200000               0210     DE48 OR
    void        0420 reversal                  0430     DE48 OR, DE90
    reverse     0420 reversal                  0430     DE48 OR, DE90

Fields: DE2 PAN and DE14 expiry (YYMM) on 0100/0200 purchases only; DE4 amount (12 digits,
minor units) and DE49 numeric currency; DE7 transmission time (MMDDhhmmss UTC), DE12/DE13 local
time and date; DE11 STAN and DE41 terminal id (the client fills them, `identifiers.py`); DE37
RRN (a reversal repeats its original's when this process sent it); DE18 MCC, DE22 POS entry
mode `010` (key entered), DE32 acquirer id, DE42 card acceptor id; DE90 original data elements
(original MTI, STAN and DE7 when this process sent the original, zeros where it does not know
them, then the acquirer id, then zeros for the forwarding institution).

**DE48, private (Clearport's use):** tag-length-value items, each a 2-letter tag, a 3-digit
length and the value: `RF` our reference of this message (the attempt id; the host keeps it and
echoes it), `OR` our reference of the original a completion, refund or reversal acts on, `CV`
the card's CVC on 0100/0200 (never echoed, never logged, never stored by the host). The host
identifies originals by `OR`, so a reversal sent by another process (the janitor) finds its
original without the STAN this one allocated.

An answer is accepted only with the answer MTI of its request, the request's STAN and terminal,
and a DE39 from `connectors.domain.ResponseCode`; anything else is malformed (`Malformed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    parse_response_code,
    result_for,
)
from clearport.core.money import CURRENCY_NUMERIC

PURCHASE = "000000"
REFUND = "200000"
POS_KEY_ENTERED = "010"

ANSWER_MTI = {"0100": "0110", "0200": "0210", "0220": "0230", "0420": "0430", "0800": "0810"}


class Malformed(Exception):
    """An answer that cannot be trusted: the connection it came on is reset. The message names
    the problem, never a field's value."""


@dataclass(frozen=True, slots=True)
class Merchant:
    """Who we are to the host (connector settings)."""

    acquirer_id: str
    card_acceptor_id: str
    mcc: str


@dataclass(frozen=True, slots=True)
class Sent:
    """What identifies a message this process sent, for the DE90 of its completion or reversal."""

    mti: str
    stan: str
    transmitted: str  # DE7
    rrn: str


def de48(**items: str | None) -> str:
    """Tag-length-value items, in the order given, skipping None."""
    out = []
    for tag, value in items.items():
        if value is None:
            continue
        if len(tag) != 2 or len(value) > 999:
            raise ValueError("a DE48 item has a 2-letter tag and at most 999 characters")
        out.append(f"{tag.upper()}{len(value):03d}{value}")
    return "".join(out)


def parse_de48(value: str) -> dict[str, str]:
    """The items of a DE48; `Malformed` if it does not parse."""
    items: dict[str, str] = {}
    at = 0
    while at < len(value):
        tag, length = value[at : at + 2], value[at + 2 : at + 5]
        if len(tag) != 2 or not length.isdigit():
            raise Malformed("DE48 does not parse")
        end = at + 5 + int(length)
        if end > len(value):
            raise Malformed("DE48 is cut short")
        items[tag] = value[at + 5 : end]
        at = end
    return items


def _times(now: datetime) -> dict[str, str]:
    return {
        "7": now.strftime("%m%d%H%M%S"),
        "12": now.strftime("%H%M%S"),
        "13": now.strftime("%m%d"),
    }


def _money(amount_minor: int, currency: str) -> dict[str, str]:
    if not 0 <= amount_minor <= 999_999_999_999:
        raise ValueError("an amount ISO 8583 cannot carry")
    return {"4": f"{amount_minor:012d}", "49": CURRENCY_NUMERIC[currency]}


def _merchant(merchant: Merchant) -> dict[str, str]:
    # DE42 is fixed length: padded with spaces.
    return {
        "18": merchant.mcc,
        "32": merchant.acquirer_id,
        "42": f"{merchant.card_acceptor_id:<15}",
    }


def purchase(
    reference: str,
    amount_minor: int,
    currency: str,
    card: ConnectorCard,
    *,
    capture: bool,
    now: datetime,
    rrn: str,
    merchant: Merchant,
) -> dict[str, str]:
    """0100 (authorization) or 0200 (sale). The one place the PAN and CVC enter a message."""
    cvc = None if card.cvc is None else card.cvc.reveal()
    return {
        "t": "0200" if capture else "0100",
        "2": card.number.reveal(),
        "3": PURCHASE,
        **_money(amount_minor, currency),
        **_times(now),
        "14": f"{card.exp_year % 100:02d}{card.exp_month:02d}",
        "22": POS_KEY_ENTERED,
        **_merchant(merchant),
        "37": rrn,
        "48": de48(RF=reference, CV=cvc),
    }


def original_data(original_mti: str, sent: Sent | None, merchant: Merchant) -> str:
    """DE90: original MTI, STAN, DE7, acquirer id (11, zero-padded), forwarding id (11)."""
    stan = sent.stan if sent is not None else "000000"
    transmitted = sent.transmitted if sent is not None else "0000000000"
    return f"{original_mti}{stan}{transmitted}{merchant.acquirer_id:0>11}{'':0>11}"


def completion(
    reference: str,
    original: str,
    amount_minor: int,
    currency: str,
    *,
    now: datetime,
    rrn: str,
    sent: Sent | None,
    merchant: Merchant,
) -> dict[str, str]:
    """0220: the capture of an authorization."""
    return {
        "t": "0220",
        "3": PURCHASE,
        **_money(amount_minor, currency),
        **_times(now),
        **_merchant(merchant),
        "37": rrn,
        "48": de48(RF=reference, OR=original),
        "90": original_data("0100", sent, merchant),
    }


def refund(
    reference: str,
    original: str,
    amount_minor: int,
    currency: str,
    *,
    now: datetime,
    rrn: str,
    merchant: Merchant,
) -> dict[str, str]:
    """0200 with processing code 20: a refund of a captured sale or authorization."""
    return {
        "t": "0200",
        "3": REFUND,
        **_money(amount_minor, currency),
        **_times(now),
        **_merchant(merchant),
        "37": rrn,
        "48": de48(RF=reference, OR=original),
    }


def reversal(
    reference: str,
    original: str,
    amount_minor: int | None,
    currency: str | None,
    *,
    now: datetime,
    rrn: str,
    sent: Sent | None,
    merchant: Merchant,
) -> dict[str, str]:
    """0420: cancel what `original` did (a void, or a call whose answer never came). It keeps
    the original's RRN when this process sent the original. A void carries no amount (the
    whole authorization is released)."""
    money = {} if amount_minor is None or currency is None else _money(amount_minor, currency)
    return {
        "t": "0420",
        "3": PURCHASE,
        **money,
        **_times(now),
        **_merchant(merchant),
        "37": sent.rrn if sent is not None else rrn,
        "48": de48(RF=reference, OR=original),
        "90": original_data(sent.mti if sent is not None else "0100", sent, merchant),
    }


def check_answer(request: Mapping[str, str], answer: Mapping[str, Any]) -> None:
    """`Malformed` unless `answer` answers `request`: its MTI, STAN, terminal and a DE39."""
    if answer.get("t") != ANSWER_MTI.get(request["t"]):
        raise Malformed("an answer with the wrong message type")
    if answer.get("11") != request["11"] or answer.get("41") != request["41"]:
        raise Malformed("an answer naming another STAN or terminal")
    if "39" not in answer:
        raise Malformed("an answer without DE39")
    if parse_response_code(answer["39"]) is None:
        raise Malformed("an answer with an unknown DE39")


def result_of(answer: Mapping[str, Any], reference: str, operation: str) -> ConnectorResult:
    """A checked answer (`check_answer`) as our result."""
    code = parse_response_code(answer.get("39"))
    if code is None:  # check_answer refused it already
        raise Malformed("an answer with an unknown DE39")
    if "48" in answer and parse_de48(str(answer["48"])).get("RF") not in (None, reference):
        raise Malformed("an answer naming another reference")
    auth = answer.get("38")
    return result_for(
        code,
        auth_code=auth if isinstance(auth, str) and auth.strip() else None,
        network_reference=answer.get("37") if isinstance(answer.get("37"), str) else None,
        reference=reference,
        operation=operation,
    )

"""The ISO 8583 connector's transformers against messages recorded from `clearport simulate
iso8583`, its framing, DE48, and the identifiers (STAN, terminal ids, RRN)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import iso8583
import pytest
from iso8583.specs import default_ascii

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorStatus,
    ResponseCode,
    meaning,
    parse_response_code,
)
from clearport.connectors.iso8583.framing import BadFrame, frame, read_frame
from clearport.connectors.iso8583.identifiers import (
    MAX_STAN,
    RrnSequence,
    StanAllocator,
    terminal_ids,
)
from clearport.connectors.iso8583.transform import (
    Malformed,
    Merchant,
    Sent,
    check_answer,
    de48,
    parse_de48,
    purchase,
    result_of,
    reversal,
)
from clearport.core.sensitive import SensitiveStr

NOW = datetime(2030, 3, 14, 15, 9, 26, tzinfo=UTC)
MERCHANT = Merchant("000001", "CLEARPORT", "5999")
REF = "att_01JREC0RDED000000003F711"
REVERSAL_REF = "att_01JREC0RDED000000203F711"

# Recorded from `clearport simulate iso8583` (the test card 4242 4242 4242 4242, CVC 123).
RECORDED_0100 = (
    b"0100723C440108C180001642424242424242420000000000000025990314150926000001150926031430125999"
    b"010060000010073CP000001CPCP0001CLEARPORT      041RF028att_01JREC0RDED000000003F711CV003123"
    b"840"
)
RECORDED_0110 = (
    b"\x00i0110102000000E8180000000000025990000010073CP00000121319500CPCP0001033RF028"
    b"att_01JREC0RDED000000003F711840"
)
RECORDED_0210_DECLINED = (
    b"\x00c0210102000000A8180000000000007000000020073CP00000251CPCP0001033RF028"
    b"att_01JREC0RDED000000103F711978"
)
RECORDED_0420 = (
    b"0420B238400108C180000000004000000000000000000000002599031415092600000315092603145999060000"
    b"010073CP000003CPCP0002CLEARPORT      066RF028att_01JREC0RDED000000203F711OR028"
    b"att_01JREC0RDED000000003F711840010000000000000000000000000000100000000000"
)
RECORDED_0430 = (
    b"\x00i0430102000000E8180000000000025990000030073CP00000380932100CPCP0002033RF028"
    b"att_01JREC0RDED000000203F711840"
)


def _card() -> ConnectorCard:
    return ConnectorCard(SensitiveStr("4242424242424242"), 12, 2030, SensitiveStr("123"))


def _authorization() -> dict[str, str]:
    request = purchase(
        REF, 2599, "usd", _card(), capture=False, now=NOW, rrn="0073CP000001", merchant=MERCHANT
    )
    request["11"], request["41"] = "000001", "CPCP0001"
    return request


def _decoded(recorded: bytes) -> dict[str, str]:
    message, _ = iso8583.decode(recorded[2:], default_ascii)
    return message


def test_an_authorization_encodes_as_recorded() -> None:
    raw, _ = iso8583.encode(_authorization(), default_ascii)
    assert bytes(raw) == RECORDED_0100
    message, _ = iso8583.decode(RECORDED_0100, default_ascii)
    assert (message["t"], message["3"], message["4"], message["49"]) == (
        "0100",
        "000000",
        "000000002599",
        "840",
    )
    assert message["14"] == "3012"  # YYMM
    assert parse_de48(message["48"]) == {"RF": REF, "CV": "123"}


def test_a_reversal_encodes_as_recorded_with_what_it_knows_of_the_original() -> None:
    request = reversal(
        REVERSAL_REF, REF, 2599, "usd", now=NOW, rrn="0073CP000003", sent=None, merchant=MERCHANT
    )
    request["11"], request["41"] = "000003", "CPCP0002"
    raw, _ = iso8583.encode(request, default_ascii)
    assert bytes(raw) == RECORDED_0420
    # Sent by this process: the original's RRN, MTI, STAN and DE7 are repeated.
    sent = Sent("0200", "000042", "0314150900", "0073CP000099")
    known = reversal("att_r", REF, 100, "usd", now=NOW, rrn="X", sent=sent, merchant=MERCHANT)
    assert known["37"] == "0073CP000099"
    assert known["90"].startswith("0200" + "000042" + "0314150900" + "00000000001")
    assert "2" not in known and "14" not in known  # no card data in a reversal
    void = reversal("att_v", REF, None, None, now=NOW, rrn="X", sent=None, merchant=MERCHANT)
    assert "4" not in void and "49" not in void


def test_recorded_answers_map_to_results() -> None:
    approved = _decoded(RECORDED_0110)
    check_answer(_authorization(), approved)
    result = result_of(approved, REF, "authorize")
    assert (result.status, result.response_code, result.auth_code) == (
        ConnectorStatus.APPROVED,
        "00",
        "213195",
    )
    assert result.network_reference == "0073CP000001"
    declined = result_of(_decoded(RECORDED_0210_DECLINED), "att_01JREC0RDED000000103F711", "sale")
    assert (declined.status, declined.decline_code, declined.auth_code) == (
        ConnectorStatus.DECLINED,
        "insufficient_funds",
        None,
    )
    acknowledged = result_of(_decoded(RECORDED_0430), REVERSAL_REF, "reverse")
    assert acknowledged.status is ConnectorStatus.APPROVED


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"39": None}, "without DE39"),
        ({"39": "Z9"}, "unknown DE39"),
        ({"11": "000999"}, "another STAN"),
        ({"41": "CPCP0009"}, "another STAN or terminal"),
        ({"t": "0210"}, "wrong message type"),
    ],
)
def test_malformed_answers_are_refused(change: dict[str, str | None], problem: str) -> None:
    answer = _decoded(RECORDED_0110)
    for field, value in change.items():
        if value is None:
            answer.pop(field)
        else:
            answer[field] = value
    with pytest.raises(Malformed, match=problem):
        check_answer(_authorization(), answer)


def test_an_answer_naming_another_reference_is_malformed() -> None:
    with pytest.raises(Malformed, match="another reference"):
        result_of(_decoded(RECORDED_0110), "att_someone_else", "authorize")


def test_a_bad_bitmap_does_not_decode() -> None:
    broken = RECORDED_0110[2:6] + b"ZZZZZZZZZZZZZZZZ" + RECORDED_0110[22:]
    with pytest.raises(iso8583.DecodeError):
        iso8583.decode(broken, default_ascii)


async def _read(data: bytes) -> bytes:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await read_frame(reader)


async def test_frames_carry_a_two_byte_big_endian_length() -> None:
    assert await _read(RECORDED_0110) == RECORDED_0110[2:]
    assert frame(RECORDED_0110[2:]) == RECORDED_0110
    with pytest.raises(BadFrame):
        await _read(b"\xff\xff" + RECORDED_0110[2:])  # a length no message of ours has
    with pytest.raises(BadFrame):
        await _read(b"\x00\x00")
    with pytest.raises(asyncio.IncompleteReadError):
        await _read(RECORDED_0110[:-5])  # the peer closed mid-message


def test_de48_items() -> None:
    value = de48(RF="att_1", OR="att_0", CV=None)
    assert value == "RF005att_1OR005att_0"
    assert parse_de48(value) == {"RF": "att_1", "OR": "att_0"}
    with pytest.raises(Malformed):
        parse_de48("RF010short")
    with pytest.raises(Malformed):
        parse_de48("RFxx")


def test_every_response_code_has_a_meaning() -> None:
    approvals = {c for c in ResponseCode if meaning(c)[0] is ConnectorStatus.APPROVED}
    technical = {c for c in ResponseCode if meaning(c)[0] is ConnectorStatus.ERROR}
    assert approvals == {ResponseCode.APPROVED}
    assert {str(c) for c in technical} == {"91", "94", "96"}
    for code in ResponseCode:
        status, decline = meaning(code)
        assert (decline is None) == (status is ConnectorStatus.APPROVED)
    assert parse_response_code("Z9") is None and parse_response_code(5) is None


def test_stans_skip_those_in_flight_and_wrap_onto_the_next_terminal() -> None:
    terminals = terminal_ids(7, 3)
    assert terminals == ["CP070001", "CP070002", "CP070003"]
    stans = StanAllocator(terminals)
    assert stans.next(set()) == ("CP070001", "000001")
    assert stans.next({"000002", "000003"}) == ("CP070001", "000004")
    stans._stan = MAX_STAN - 1  # as after a busy day
    assert stans.next(set()) == ("CP070001", "999999")
    # Wrapped: the next terminal takes over, skipping STANs still in flight.
    assert stans.next({"000001"}) == ("CP070002", "000002")


def test_terminal_stan_pairs_repeat_only_after_the_whole_pool() -> None:
    stans = StanAllocator(terminal_ids(1, 4))
    stans._stan = MAX_STAN - 10
    seen = {stans.next(set()) for _ in range(50)}
    assert len(seen) == 50


def test_rrns_are_twelve_characters_unique_per_day_and_per_station() -> None:
    first, second = RrnSequence(5), RrnSequence(6)
    issued = [first.next(NOW) for _ in range(1_000)] + [second.next(NOW) for _ in range(1_000)]
    assert len(set(issued)) == 2_000
    assert all(len(r) == 12 and r.isalnum() for r in issued)
    assert issued[0].startswith("0073")  # 2030, day 73
    tomorrow = first.next(NOW + timedelta(days=1))
    assert tomorrow.startswith("0074") and tomorrow.endswith("000000")

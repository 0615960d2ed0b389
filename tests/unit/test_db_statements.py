"""Named statement parameters: numbered once, in order of first use, checked by name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest

from clearport.core.errors import InvariantViolation
from clearport.db.statements import Params, Table


def test_names_are_numbered_once_in_order_of_first_use() -> None:
    p = Params()
    sql = f"UPDATE t SET a = {p('a', 'bigint')}, b = {p('b')} WHERE id = {p('id')} OR a = {p('a')}"
    assert sql == "UPDATE t SET a = $1::bigint, b = $2 WHERE id = $3 OR a = $1"
    assert p.args({"id": "x"}, a=1, b=None) == [1, None, "x"]


def test_missing_and_unknown_names_are_refused() -> None:
    p = Params()
    p("a")
    p("b")
    with pytest.raises(InvariantViolation, match="missing \\['b'\\]"):
        p.args(a=1)
    with pytest.raises(InvariantViolation, match="unknown \\['c'\\]"):
        p.args(a=1, b=2, c=3)


def test_table_values_and_named_rows_line_up() -> None:
    table = Table("payments", (("id", "text"), ("amount", "bigint")))
    p = Params()
    sql = f"INSERT INTO {table.name} ({table.column_list()}) VALUES ({table.values(p, 'pay')})"
    assert sql == "INSERT INTO payments (id, amount) VALUES ($1::text, $2::bigint)"
    assert p.args(table.named("pay", {"amount": 5, "id": "pay_1"})) == ["pay_1", 5]
    with pytest.raises(InvariantViolation, match="currency"):
        table.named("pay", {"id": "pay_1", "amount": 5, "currency": "usd"})


class _Status(StrEnum):
    OPEN = "open"


@dataclass(frozen=True)
class _Thing:
    id: str
    status: _Status


def test_records_map_to_rows_and_back_by_column() -> None:
    table = Table("things", (("id", "text"), ("status", "text")))
    table.check_matches(_Thing)
    row = table.row(_Thing("t_1", _Status.OPEN))
    assert row == {"id": "t_1", "status": "open"}
    assert type(row["status"]) is str
    assert table.record(_Thing, row, status=_Status) == _Thing("t_1", _Status.OPEN)
    with pytest.raises(InvariantViolation, match="extra"):
        Table("things", (("id", "text"), ("status", "text"), ("extra", "text"))).check_matches(
            _Thing
        )

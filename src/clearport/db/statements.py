"""SQL with named parameters, built once: no hand-counted `$30` offsets, no `.replace()` splicing.

    p = Params()
    SET_STATUS = f"UPDATE payments SET status = {p('status')} WHERE id = {p('id')}"
    await conn.execute(SET_STATUS, *p.args(status="captured", id=payment_id))

Each name gets its `$n` the first time it appears and keeps it; `args` puts the values in that
order and refuses a missing or an unknown name. Statements are module constants, so their text
never varies and asyncpg prepares each once per connection.

`Table` describes a table's columns and their SQL types, so one statement can insert a whole
record under a prefix (`payment.id`, `payment.amount`, ...) and a CTE can chain several tables'
steps, each store contributing its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from clearport.core.errors import InvariantViolation, invariant

R = TypeVar("R")


class Row(Protocol):
    """A fetched row by column name (asyncpg's Record, a dict)."""

    def __getitem__(self, column: str, /) -> Any: ...


class Params:
    """The named parameters of one statement, numbered in order of first use."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def __call__(self, name: str, cast: str | None = None) -> str:
        """`$n` for `name` (`$n::cast` with a cast); the same name is the same parameter."""
        number = self._numbers.setdefault(name, len(self._numbers) + 1)
        return f"${number}::{cast}" if cast else f"${number}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._numbers)

    def args(self, values: Mapping[str, Any] | None = None, /, **named: Any) -> list[Any]:
        """The positional arguments for the statement, from values by name."""
        given = {**(values or {}), **named}
        missing = [n for n in self._numbers if n not in given]
        unknown = [n for n in given if n not in self._numbers]
        if missing or unknown:
            raise InvariantViolation(
                f"statement parameters: missing {missing or 'none'}, unknown {unknown or 'none'}"
            )
        return [given[n] for n in self._numbers]


@dataclass(frozen=True, slots=True)
class Table:
    """A table's columns with their SQL types, in the order statements list them."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.columns)

    def column_list(self) -> str:
        return ", ".join(self.column_names)

    def values(self, params: Params, prefix: str) -> str:
        """`$a::type, $b::type, ...`: one typed parameter per column, named `<prefix>.<column>`."""
        return ", ".join(
            params(f"{prefix}.{column}", sql_type) for column, sql_type in self.columns
        )

    def named(self, prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row's values under the names `values` gave them; every column, nothing else."""
        if set(row) != set(self.column_names):
            raise InvariantViolation(
                f"{self.name}: columns {sorted(set(self.column_names) ^ set(row))} differ"
            )
        return {f"{prefix}.{column}": row[column] for column in self.column_names}

    def row(self, record: object) -> dict[str, Any]:
        """A record (a dataclass whose fields are exactly this table's columns) as a row: its
        fields by column name, enums as their values."""
        return {column: _plain(getattr(record, column)) for column in self.column_names}

    def record(self, kind: Callable[..., R], row: Row, **convert: Callable[[Any], Any]) -> R:
        """The row back as a `kind` record; `convert` names the columns that need a type of
        their own (`status=PaymentStatus`)."""
        return kind(
            **{
                column: convert[column](row[column]) if column in convert else row[column]
                for column in self.column_names
            }
        )

    def check_matches(self, kind: type) -> None:
        """Fail at import if `kind`'s fields and this table's columns ever drift apart."""
        fields = {f.name for f in dataclasses.fields(kind)}
        invariant(
            fields == set(self.column_names),
            f"{self.name} vs {kind.__name__}: {sorted(fields ^ set(self.column_names))}",
        )


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value

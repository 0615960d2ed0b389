"""An import-linter contract that lists what modules MAY import (an allowlist), where the
built-in `forbidden` contract can only list what they may not.

    [[tool.importlinter.contracts]]
    type = "allowlist"
    source_modules = ["clearport.*.domain"]
    allowed_modules = ["clearport.core"]

Every module matched by `source_modules` (and its submodules) may import the standard library,
the `allowed_modules` (and their submodules) and nothing else: a third-party package or another
Clearport module is a broken contract, even one nobody thought to forbid.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain import helpers

_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


@dataclass(frozen=True)
class _Illegal:
    importer: str
    imported: str
    line_numbers: tuple[int, ...]


def _within(module: str, roots: set[str]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


class AllowlistContract(Contract):
    type_name = "allowlist"

    source_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    allowed_modules = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        sources = {
            m.name
            for m in helpers.module_expressions_to_modules(
                graph,
                self.source_modules,  # type: ignore[arg-type]
            )
        }
        allowed = {
            m.name
            for m in helpers.module_expressions_to_modules(
                graph,
                self.allowed_modules,  # type: ignore[arg-type]
            )
        }
        checked = set(sources)
        for source in sources:
            if not graph.is_module_squashed(source):
                checked |= graph.find_descendants(source)
        illegal: list[_Illegal] = []
        for importer in sorted(checked):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported.split(".")[0] in _STDLIB:
                    continue
                if _within(imported, allowed | sources):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                illegal.append(
                    _Illegal(importer, imported, tuple(d["line_number"] for d in details))
                )
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for link in check.metadata["illegal"]:
            lines = ", ".join(map(str, link.line_numbers))
            output.print_error(
                f"- {link.importer} -> {link.imported} (l.{lines}): not on the allowlist",
                bold=False,
            )
            output.new_line()

"""The README lists every setting twice: in "Configuration" (default, meaning) and in "Deploying
on AWS" (the value on AWS). A setting added to the code and not to either fails here."""

from __future__ import annotations

from pathlib import Path

from clearport.config import Settings
from clearport.settlement.settings import SettlementSettings
from clearport.webhooks.settings import WebhookSettings

# Settings groups read from the environment under a prefix of their own.
NESTED = {
    "settlement": ("CLEARPORT_SETTLEMENT_", SettlementSettings),
    "webhooks": ("CLEARPORT_WEBHOOKS_", WebhookSettings),
}

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start : end if end != -1 else None]


def _env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        if name in NESTED:
            prefix, group = NESTED[name]
            names |= {f"{prefix}{inner.upper()}" for inner in group.model_fields}
            continue
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"CLEARPORT_{name.upper()}")
    return names


def test_every_setting_is_in_both_tables() -> None:
    names = _env_names()
    assert "CLEARPORT_S3_BUCKET" in names and "CLEARPORT_KEYRING" in names
    deploying = _section("## Deploying on AWS")
    configuration = _section("## Configuration")
    missing_on_aws = sorted(n for n in names if f"`{n}`" not in deploying)
    assert missing_on_aws == []

    # The configuration table abbreviates a group's names (`…_NACHA_COMPANY_ID` for
    # CLEARPORT_SETTLEMENT_NACHA_COMPANY_ID); each name's tail is there in code.
    def abbreviated(name: str) -> str | None:
        for prefix, _ in NESTED.values():
            if name.startswith(prefix):
                return f"`…{name[len(prefix) - 1 :]}`"
        return None

    missing = sorted(
        n
        for n in names
        if f"`{n}`" not in configuration and (abbreviated(n) or f"`{n}`") not in configuration
    )
    assert missing == []

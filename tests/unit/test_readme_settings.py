"""The README lists every setting twice: in "Configuration" (default, meaning) and in "Deploying
on AWS" (the value on AWS). A setting added to the code and not to either fails here."""

from __future__ import annotations

from pathlib import Path

from clearport.config import Settings
from clearport.settlement.settings import SettlementSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start : end if end != -1 else None]


def _env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        if name == "settlement":
            continue
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"CLEARPORT_{name.upper()}")
    names |= {f"CLEARPORT_SETTLEMENT_{name.upper()}" for name in SettlementSettings.model_fields}
    return names


def test_every_setting_is_in_both_tables() -> None:
    names = _env_names()
    assert "CLEARPORT_S3_BUCKET" in names and "CLEARPORT_KEYRING" in names
    deploying = _section("## Deploying on AWS")
    configuration = _section("## Configuration")
    missing_on_aws = sorted(n for n in names if f"`{n}`" not in deploying)
    assert missing_on_aws == []
    # The configuration table abbreviates groups (`…_NACHA_COMPANY_ID`); each name's tail is
    # there in code.
    short = len("CLEARPORT_SETTLEMENT")
    missing = sorted(
        n for n in names if f"`{n}`" not in configuration and f"`…{n[short:]}`" not in configuration
    )
    assert missing == []

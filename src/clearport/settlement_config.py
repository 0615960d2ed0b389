"""Settlement settings (issue 6), from the environment with prefix CLEARPORT_SETTLEMENT_.

Kept beside config.py rather than in it so the settlement area owns its own knobs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class SettlementSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEARPORT_SETTLEMENT_", extra="ignore")

    # A business date D covers everything created before D + cutoff in `timezone`.
    cutoff: str = "00:00"  # HH:MM local time of the day after the business date
    timezone: str = "UTC"
    # Items per SQL chunk; bounds memory and transaction size.
    chunk_size: int = 50_000
    # Object storage root for payout files and reports (local directory adapter).
    files_dir: Path | None = None  # default: <data_dir>/settlement-files
    # The platform's own bank (originator of payouts). Example values for demos and tests.
    nacha_odfi_routing: str = "091000019"
    nacha_company_id: str = "1234567890"
    nacha_company_name: str = "CLEARPORT"
    nacha_destination_name: str = "EXAMPLE BANK"
    sepa_debtor_name: str = "Clearport Payouts"
    sepa_debtor_iban: str = "DE89370400440532013000"
    sepa_debtor_bic: str = "COBADEFFXXX"


def load_settlement_settings() -> SettlementSettings:
    return SettlementSettings()

"""Settlement's settings, from the environment with prefix CLEARPORT_SETTLEMENT_.

Settlement owns its knobs; `config.Settings.settlement` carries them with the rest.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import time
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from clearport.settlement.domain import SettlementOptions


class SettlementSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEARPORT_SETTLEMENT_", extra="ignore")

    # A business date D covers everything created before D + cutoff in `timezone`.
    cutoff: str = "00:00"  # HH:MM local time of the day after the business date
    timezone: str = "UTC"
    # Merchants are hashed into this many partitions; each is settled in one transaction and
    # can run on any worker.
    partitions: int = 8
    # Partitions (and staging shares) one process settles at once, each on a connection of
    # settlement's own pool; unset: one per CPU (decision 0914).
    workers: int | None = None
    # Sources older than cutoff - lookback are not looked at (bounds the nightly scan).
    lookback_days: int = 7
    # Items per report chunk; bounds memory.
    chunk_size: int = 50_000
    # The older name of CLEARPORT_STORAGE_DIR (the local object storage root).
    files_dir: Path | None = None
    # The platform's own bank (originator of payouts). Example values for demos and tests.
    nacha_odfi_routing: str = "091000019"
    nacha_company_id: str = "1234567890"
    nacha_company_name: str = "CLEARPORT"
    nacha_destination_name: str = "EXAMPLE BANK"
    sepa_debtor_name: str = "Clearport Payouts"
    sepa_debtor_iban: str = "DE89370400440532013000"
    sepa_debtor_bic: str = "COBADEFFXXX"

    def options(self) -> SettlementOptions:
        hours, minutes = (int(part) for part in self.cutoff.split(":"))
        options = SettlementOptions(
            cutoff=time(hours, minutes),
            timezone=self.timezone,
            partitions=self.partitions,
            lookback_days=self.lookback_days,
            chunk_size=self.chunk_size,
        )
        if self.workers is None:
            return options
        return replace(options, workers=max(1, self.workers))

"""Vault tables: vault_deks, card_tokens, merchant_bank_accounts, vault_secrets,
vault_rotations, vault_wrapped_keys. One repository class made of one part per kind of table:
keys (`deks`) and sealed data (`sealed`)."""

from __future__ import annotations

from clearport.vault.store.deks import DekRows, PgWrappedKeys
from clearport.vault.store.sealed import SealedRows

__all__ = ["PgVaultRepository", "PgWrappedKeys"]


class PgVaultRepository(DekRows, SealedRows):
    """The vault's repository port over PostgreSQL."""

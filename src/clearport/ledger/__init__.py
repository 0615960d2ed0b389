"""The double-entry ledger: accounts, transfers, holds, balances."""

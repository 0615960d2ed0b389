"""The card vault: tokens, bank accounts, envelope encryption, rotation, shredding."""

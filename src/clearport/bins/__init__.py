"""BIN data: the brand, funding type, category and issuer country of a card's first digits."""

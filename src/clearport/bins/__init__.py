"""BIN data: which issuer, brand, funding type and country a card number's first digits belong to."""

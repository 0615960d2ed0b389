"""Dual control of the local keyring's master key: split into N components, combine them back.

Each component is as long as the key and random but the last, which is the key XOR all the
others: all N together give the key, any N-1 reveal nothing about it. A component is written as
hex with six check digits so a custodian's typo is caught before any XOR (docs/key-ceremony.md).
"""

from __future__ import annotations

import hashlib
import secrets

from clearport.vault.domain import KEY_BYTES


def _component_text(component: bytes) -> str:
    check = hashlib.sha256(component).hexdigest()[:6]
    return f"{component.hex()}-{check}"


def split_master_key(master: bytes, parts: int) -> list[str]:
    """N full-length components; all N XORed give the master key, any N-1 reveal nothing."""
    if not 2 <= parts <= 16:
        raise ValueError("split into 2 to 16 parts")
    components = [secrets.token_bytes(len(master)) for _ in range(parts - 1)]
    last = bytearray(master)
    for component in components:
        for i, byte in enumerate(component):
            last[i] ^= byte
    components.append(bytes(last))
    return [_component_text(c) for c in components]


def parse_component(text: str) -> bytes:
    """A component typed back in; the check digits catch typos before any XOR."""
    text = text.strip().lower()
    body, _, check = text.partition("-")
    try:
        component = bytes.fromhex(body)
    except ValueError as exc:
        raise ValueError("a component is 64 hex digits, a dash and 6 check digits") from exc
    if len(component) != KEY_BYTES or hashlib.sha256(component).hexdigest()[:6] != check:
        raise ValueError("component check digits do not match: re-type it")
    return component


def combine_components(components: list[bytes]) -> bytes:
    if len(components) < 2:
        raise ValueError("combine needs at least two components")
    result = bytearray(KEY_BYTES)
    for component in components:
        for i, byte in enumerate(component):
            result[i] ^= byte
    return bytes(result)

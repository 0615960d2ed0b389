"""AES-GCM record encryption, associated data and the DEK cache: no I/O."""

from __future__ import annotations

import os

import pytest

from clearport.vault.domain import RecordKind, aad_for
from clearport.vault.envelope import AesGcmCipher, TtlDekCache

# --- AES-GCM and the DEK cache -----------------------------------------------------------------


def test_aad_binds_merchant_kind_record_and_version() -> None:
    cipher = AesGcmCipher()
    key = os.urandom(32)
    aad = aad_for("mer_A", RecordKind.CARD, "tok_1", 1)
    nonce, ct = cipher.encrypt(key, b"4242424242424242", aad)
    assert cipher.decrypt(key, nonce, ct, aad) == b"4242424242424242"
    for other in (
        aad_for("mer_B", RecordKind.CARD, "tok_1", 1),
        aad_for("mer_A", RecordKind.BANK_ACCOUNT, "tok_1", 1),
        aad_for("mer_A", RecordKind.CARD, "tok_2", 1),
        aad_for("mer_A", RecordKind.CARD, "tok_1", 2),
    ):
        with pytest.raises(ValueError):
            cipher.decrypt(key, nonce, ct, other)
    tampered = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(ValueError):
        cipher.decrypt(key, nonce, tampered, aad)


def test_no_key_nonce_pair_repeats_across_100k_encryptions() -> None:
    cipher = AesGcmCipher()
    keys = [os.urandom(32) for _ in range(4)]
    seen: set[tuple[bytes, bytes]] = set()
    for i in range(100_000):
        key = keys[i % len(keys)]
        nonce, _ = cipher.encrypt(key, b"x", b"aad")
        assert len(nonce) == 12
        seen.add((key, nonce))
    assert len(seen) == 100_000


def test_dek_cache_is_bounded_and_expires() -> None:
    now = [0.0]
    cache = TtlDekCache(max_entries=2, ttl_s=10, clock=lambda: now[0])
    cache.put("mer_A", 1, b"w1", b"k1")
    cache.put("mer_B", 1, b"w2", b"k2")
    assert cache.get("mer_A", 1, b"w1") == b"k1"  # A is now most recent
    cache.put("mer_C", 1, b"w3", b"k3")
    assert len(cache) == 2
    assert cache.get("mer_B", 1, b"w2") is None  # least recently used went
    assert cache.get("mer_A", 1, b"other-wrap") is None  # a different row never hits
    now[0] = 10.0
    assert cache.get("mer_A", 1, b"w1") is None
    cache.put("mer_D", 1, b"w", b"k")
    cache.evict_merchant("mer_D")
    assert cache.get("mer_D", 1, b"w") is None

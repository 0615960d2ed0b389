"""AES-256-GCM for records, and the bounded, expiring cache of unwrapped DEKs."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clearport.vault.domain import KEY_BYTES

NONCE_BYTES = 12  # 96 bits, the size GCM is specified for


class AesGcmCipher:
    """A fresh random 96-bit nonce per record. With random nonces the collision bound for one key
    is ~2^32 messages; DEKs are per merchant and rotatable, far below that."""

    def encrypt(self, key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256 needs a 32-byte key")
        nonce = os.urandom(NONCE_BYTES)
        return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)

    def decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
            raise ValueError("bad key or nonce size")
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise ValueError("authentication failed") from exc


class TtlDekCache:
    """LRU of unwrapped DEKs: at most `max_entries`, each for at most `ttl_s` seconds.

    Bounded so a process serving many merchants does not hold every key forever, and expiring
    so a shredded or rotated key leaves memory of every API process within `ttl_s`.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("cache needs a positive size and TTL")
        self._max = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[tuple[str, int], tuple[float, bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, merchant_id: str, version: int, wrapped: bytes) -> bytes | None:
        key = (merchant_id, version)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires_at, cached_wrapped, dek = item
            if cached_wrapped != wrapped:
                return None
            if self._clock() >= expires_at:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return dek

    def put(self, merchant_id: str, version: int, wrapped: bytes, key: bytes) -> None:
        with self._lock:
            self._items[(merchant_id, version)] = (self._clock() + self._ttl_s, wrapped, key)
            self._items.move_to_end((merchant_id, version))
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def evict_merchant(self, merchant_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == merchant_id]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

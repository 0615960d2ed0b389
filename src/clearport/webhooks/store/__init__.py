"""Webhooks in PostgreSQL: endpoints and their secrets (endpoints.py); the relay, deliveries,
attempts and retention (deliveries.py). The parts hold no state, so the store is both."""

from __future__ import annotations

from clearport.webhooks.store.deliveries import PgDeliveryStore
from clearport.webhooks.store.endpoints import PgEndpointStore


class PgWebhookStore(PgEndpointStore, PgDeliveryStore):
    """The webhook store that wiring hands to the service (ports.WebhookStore)."""


__all__ = ["PgWebhookStore"]

"""Webhooks: endpoints, and the signed, retried, at-least-once delivery of events to them."""

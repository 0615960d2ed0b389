"""Payments: authorize, capture, void, refund and sale through a connector."""

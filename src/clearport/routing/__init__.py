"""Routing control: versioned rule sets that choose a payment's connectors, and their checker."""

"""Merchants: onboarding, terms, status and their API keys."""

"""The in-process simulator connector (API.md's test cards)."""

"""Replay of history: a window of past payments through candidate routing and risk rules."""

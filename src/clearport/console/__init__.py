"""Operator web console."""

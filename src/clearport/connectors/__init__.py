"""Acquirers and processors: the connector port, its answers, and one folder per connector."""

"""The `clearport` command."""

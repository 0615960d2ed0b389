"""The transaction log and the hash chains sealing it and the audit log."""

"""Object storage for payout files and reports: a local directory, S3 later."""

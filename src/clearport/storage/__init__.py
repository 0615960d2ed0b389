"""Object storage for payout files, reports, dispute evidence, txlog exports and checkpoints:
a local directory by default, S3 when configured."""

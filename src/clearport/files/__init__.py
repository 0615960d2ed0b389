"""Uploaded files: dispute evidence and processor files, kept in object storage."""

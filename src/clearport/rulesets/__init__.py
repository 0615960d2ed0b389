"""Versioned rule sets (routing's and risk's): draft -> active -> inactive, one active at a time,
audited, cached per process and invalidated on activation."""

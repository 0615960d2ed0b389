"""Clearport: an open-source merchant services platform."""

__version__ = "0.1.0"

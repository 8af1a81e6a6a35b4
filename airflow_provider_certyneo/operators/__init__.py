"""Operators: upload, create, send, wait, download, void, and bulk send."""

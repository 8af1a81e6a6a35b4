"""The provider's version, in a module of its own so that provider info and the hooks' User-Agent read it
without importing the package's ``__init__``."""

from __future__ import annotations

__version__ = "0.1.0"

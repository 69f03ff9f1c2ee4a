"""Engines: how tokens are made. Each file registers itself in ENGINES."""
from testbed.engines.base import ENGINES, Engine

__all__ = ["ENGINES", "Engine"]

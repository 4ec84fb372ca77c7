"""The pytester fixture, for testing wirekit's pytest plugin from the outside."""

from __future__ import annotations

pytest_plugins = ["pytester"]

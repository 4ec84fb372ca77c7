"""pytest's ``pytester`` fixture, for testing wirekit's pytest plugin from the outside.

``pytest_plugins = ["pytester"]`` is only allowed in the top-level conftest; registering
the plugin when this conftest loads keeps it local to these tests.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")

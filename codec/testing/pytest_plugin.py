"""pytest plugin entry point (``pytest11``): wirekit's fixtures for users' test suites.

Imports nothing heavy at load time, so an environment without hypothesis still runs pytest.
"""

from __future__ import annotations

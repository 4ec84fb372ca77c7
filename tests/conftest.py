"""Suite-wide settings: hypothesis profiles (CI is bounded and deterministic); with
``WIREKIT_TEST_COMPILED=1`` (the compiled leg of ``dev.py test``), a check that the
compiled modules are the ones under test; TLS contexts for loopback servers and clients."""

from __future__ import annotations

import os
import ssl
import sys
from importlib import import_module
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest
import trustme
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """The compiled leg must test the installed compiled build, not a checkout's ``.py``
    files: every module the build compiles is an extension module outside the rootdir."""
    if os.environ.get("WIREKIT_TEST_COMPILED") != "1":
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_build"))
    try:
        from compiled_modules import module_names
    finally:
        del sys.path[0]
    root = session.config.rootpath
    wrong = []
    for name in module_names():
        file = Path(str(import_module(name).__file__))
        if not file.name.endswith(tuple(EXTENSION_SUFFIXES)) or file.is_relative_to(root):
            wrong.append(f"{name}: {file}")
    import codec
    import transport

    if wrong or not (codec.COMPILED and transport.COMPILED):
        pytest.exit(
            "WIREKIT_TEST_COMPILED=1 but the modules under test are not the installed"
            " compiled ones:\n  " + "\n  ".join(wrong or ["codec/transport.COMPILED false"]),
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


# -- TLS on loopback: one test CA (trustme), a server certificate for 127.0.0.1/localhost --
@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx

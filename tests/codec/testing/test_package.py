"""codec.testing's public face, and the rule that `import codec` never needs hypothesis."""

from __future__ import annotations

import subprocess
import sys

import codec.testing


def test_all_names_resolve_and_are_public() -> None:
    for name in codec.testing.__all__:
        assert getattr(codec.testing, name) is not None
    public = {n for n in dir(codec.testing) if not n.startswith("_")}
    helpers = {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    modules = {n for n in public if type(getattr(codec.testing, n)).__name__ == "module"}
    assert set(codec.testing.__all__) == public - modules - helpers


def test_import_codec_does_not_import_hypothesis() -> None:
    code = "import sys, codec; assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pytest_plugin_does_not_import_hypothesis() -> None:
    code = (
        "import sys, codec.testing.pytest_plugin; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

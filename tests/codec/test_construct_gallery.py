"""construct's own gallery, with construct's own sample blobs, through the codec.

The formats (``deprecated_gallery``: IP stack, DNS, DHCP, BMP, PE32, ELF, EMF...; ``gallery``:
PE32/COFF) and the blobs are construct's: they are read from a checkout of construct's
repository at the installed version, never copied here (some blobs, such as Windows
executables, are not ours to redistribute). The cases are construct's own: every
``commondump``/``commonhex``/``commonbytes`` call of its gallery test modules (those it
marks ``xfail`` are left out), read with ``ast``.

construct's wheel ships neither, so the checkout is looked for in ``$WIREKIT_CONSTRUCT_SOURCE``
then ``~/.cache/wirekit/construct-<version>``; without one, this module is skipped.

For every case: either ``Codec(format)`` refuses the schema when it is built, naming the
construct and its path, or the first message decoded from the blob, fed whole, one byte at a
time and in random pieces, is exactly (types included) what ``format.parse(blob)`` returns,
and consumes exactly the bytes that parse consumed; with the generated parser and with
construct's own.
"""

from __future__ import annotations

import ast
import importlib
import io
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import construct as cs
import pytest

from codec import Buffer, Codec, SchemaError

from .helpers import assert_same, split

VERSION = cs.version_string if hasattr(cs, "version_string") else "2.10.70"


def _source() -> Path | None:
    candidates = [os.environ.get("WIREKIT_CONSTRUCT_SOURCE", "")]
    candidates.append(str(Path.home() / ".cache" / "wirekit" / f"construct-{VERSION}"))
    for c in candidates:
        if c and (Path(c) / "deprecated_gallery" / "__init__.py").is_file():
            return Path(c)
    return None


SOURCE = _source()
if SOURCE is None:
    pytest.skip(
        f"construct's gallery is not installed with construct: set WIREKIT_CONSTRUCT_SOURCE to "
        f"a checkout of construct {VERSION} (or put one at ~/.cache/wirekit/construct-{VERSION})",
        allow_module_level=True,
    )


@dataclass(frozen=True)
class GalleryCase:
    id: str
    module: str  # "deprecated_gallery" or "gallery"
    format: str
    blob: bytes


def _literal(node: ast.expr) -> Any:
    """A literal argument, with ``b"..." + b"..."`` folded as construct's tests write it."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) + _literal(node.right)
    return ast.literal_eval(node)


def _cases() -> list[GalleryCase]:
    assert SOURCE is not None
    found: list[GalleryCase] = []
    tests = SOURCE / "tests"
    for module, test_file, blobs in [
        ("deprecated_gallery", "deprecated_gallery/test_formats.py", "deprecated_gallery/blobs"),
        ("deprecated_gallery", "deprecated_gallery/test_protocols.py", None),
        ("gallery", "gallery/test_gallery.py", "gallery/blobs"),
    ]:
        tree = ast.parse((tests / test_file).read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            if any("xfail" in ast.unparse(d) for d in fn.decorator_list):
                continue
            for n, call in enumerate(c for c in ast.walk(fn) if isinstance(c, ast.Call)):
                helper = ast.unparse(call.func)
                if not helper.startswith("common") or len(call.args) < 2:
                    continue
                if not isinstance(call.args[0], ast.Name):
                    continue
                fmt = call.args[0].id
                arg = _literal(call.args[1])
                if helper in ("commondump", "commondumpdeprecated") and blobs:
                    blob = (tests / blobs / arg).read_bytes()
                    label = arg
                elif helper == "commonhex":
                    blob = bytes.fromhex(arg.decode())
                    label = str(n)
                elif helper == "commonbytes":
                    blob = arg
                    label = str(n)
                else:
                    continue  # common(): a value test of a small adapter, not a format
                found.append(GalleryCase(f"{fmt}-{label}", module, fmt, blob))
    return found


def _import(module: str) -> Any:
    assert SOURCE is not None
    sys.path.append(str(SOURCE))  # appended: the installed construct stays the one used
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(SOURCE))


CASES = _cases()


def _format(case: GalleryCase) -> cs.Construct:
    try:
        mod = _import(case.module)
    except ImportError as exc:  # gallery's PE32/COFF needs construct's arrow extra
        pytest.skip(f"{case.module} needs {exc.name}, not installed")
    fmt: cs.Construct = getattr(mod, case.format)
    return fmt


def _chunkings(blob: bytes) -> list[list[bytes]]:
    """Whole; one byte at a time (over the first 512 bytes of a longer blob, then 256-byte
    pieces: a schema that seeks is trial-parsed from its start whenever the bytes it lacked
    arrive, so byte-by-byte feeding of a long one costs its size squared); random splits."""
    rng = random.Random(len(blob))
    head = 512
    out = [[blob]]
    out.append(
        [*(blob[i : i + 1] for i in range(min(head, len(blob)))), *split_every(blob[head:], 256)]
    )
    for _ in range(2):
        out.append(split(blob, rng.sample(range(1, len(blob)), min(len(blob) - 1, 12))))
    return out


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gallery_format(case: GalleryCase, fast: bool) -> None:
    fmt = _format(case)
    stream = io.BytesIO(case.blob)
    want = fmt.parse_stream(stream)
    consumed = stream.tell()
    try:
        codec: Codec[Any] = Codec(fmt, max_frame_size=1 << 24, fast=fast)
    except SchemaError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        # refused up front, naming the construct class and where it is in the schema
        assert re.search(r"\((\w+) at [^)]+\)", refusal), refusal
        return
    for chunks in _chunkings(case.blob):
        buf = Buffer()
        got = None
        fed = 0
        for chunk in chunks:
            buf.extend(chunk)
            fed += len(chunk)
            before = len(buf)
            got = codec.decode(buf)
            if got is not None:
                assert fed - len(buf) == consumed, (fed - len(buf), consumed)
                break
            assert len(buf) == before
        assert got is not None, f"{codec.framing!r}: no message from the whole blob"
        assert_same(got, want)
    if consumed == len(case.blob):  # (a file's blob may hold more than the parsed part)
        assert_same(codec.decode_all(case.blob), [want])


def test_gallery_cases_found() -> None:
    """The case list comes from construct's tests: a layout change must not empty it."""
    assert len(CASES) >= 25
    assert {"ip_stack", "dns", "bitmap_file", "pe32_file"} <= {c.format for c in CASES}

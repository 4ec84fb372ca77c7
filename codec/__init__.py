"""wirekit's codec: construct schemas compiled into incremental decoders and encoders.

Sans-I/O: nothing here touches a socket or awaits. Bytes go into a :class:`Buffer`;
:meth:`Codec.decode` returns one message or ``None`` (a half packet, nothing consumed).

>>> import construct as cs
>>> c = Codec(cs.PascalString(cs.Int8ub, "utf8"))
>>> buf = Buffer(b"\\x0csmart")
>>> c.decode(buf) is None
True
>>> buf.extend(b"-socket\\x0csmart-socket")
>>> c.decode(buf), c.decode(buf), c.decode(buf)
('smart-socket', 'smart-socket', None)
"""

from __future__ import annotations

from . import _buffer as _buffer
from . import _constructs  # noqa: F401  (registers the construct classes the codec supports)
from ._analysis import SchemaError
from ._buffer import Buffer
from ._codec import DEFAULT_MAX_FRAME_SIZE, Codec, Decoder
from ._compiler import ParseGen
from ._encoder import BuildGen
from ._errors import DecodeError, EncodeError, FrameTooLarge, IncompleteFrame
from ._framing import Delimiter, FixedLength, Framing, LengthField, TrialParse, VarIntLength
from ._native import is_compiled as _is_compiled
from ._protocol import Protocol
from ._registry import Analysis, RegistryError, register_construct, unregister_construct
from ._version import __version__ as __version__

#: Whether the codec's hot modules (``Buffer``, ``Codec.decode_many``, the length-prefix
#: encoder and splitter) run compiled: a wheel built with ``WIREKIT_COMPILE=1``
#: (docs/performance.md, "Compiled with mypyc"). ``False`` for the pure-Python build, the
#: default and the reference. :data:`transport.COMPILED` says the same of the transport.
COMPILED: bool = _is_compiled(_buffer)

__all__ = [
    "COMPILED",
    "DEFAULT_MAX_FRAME_SIZE",
    "Analysis",
    "Buffer",
    "BuildGen",
    "Codec",
    "DecodeError",
    "Decoder",
    "Delimiter",
    "EncodeError",
    "FixedLength",
    "FrameTooLarge",
    "Framing",
    "IncompleteFrame",
    "LengthField",
    "ParseGen",
    "Protocol",
    "RegistryError",
    "SchemaError",
    "TrialParse",
    "VarIntLength",
    "register_construct",
    "unregister_construct",
]

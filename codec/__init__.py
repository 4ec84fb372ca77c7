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

from . import _constructs  # noqa: F401  (registers the construct classes the codec supports)
from ._analysis import SchemaError
from ._buffer import Buffer
from ._codec import DEFAULT_MAX_FRAME_SIZE, Codec, Decoder
from ._compiler import ParseGen
from ._encoder import BuildGen
from ._errors import DecodeError, EncodeError, FrameTooLarge, IncompleteFrame
from ._framing import Delimiter, FixedLength, Framing, LengthField, TrialParse, VarIntLength
from ._protocol import Protocol
from ._registry import Analysis, RegistryError, register_construct, unregister_construct
from ._version import __version__ as __version__

__all__ = [
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

"""The Modbus/TCP schema the capture benchmark decodes (MBAP header + PDU).

The MBAP length field is given as an explicit framing (bytes 4-5 count what follows them),
so each frame is measured from its header and parsed once.
"""

from __future__ import annotations

from codec import Codec, LengthField
from schemas import modbus

SCHEMA = modbus.ADU

MODBUS = Codec(SCHEMA, framing=LengthField(offset=4, length=2))

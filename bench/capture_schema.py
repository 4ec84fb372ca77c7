"""The Modbus/TCP schema the capture benchmark decodes (MBAP header + PDU).

The MBAP length field is given as an explicit framing (bytes 4-5 count what follows them),
so each frame is measured from its header and parsed once.
"""

from __future__ import annotations

import construct as cs

from codec import Codec, LengthField

SCHEMA = cs.Struct(
    "transaction_id" / cs.Int16ub,
    "protocol_id" / cs.Const(0, cs.Int16ub),
    "length" / cs.Int16ub,
    "unit_id" / cs.Int8ub,
    "function_code" / cs.Int8ub,
    "data" / cs.Bytes(cs.this.length - 2),
)

MODBUS = Codec(SCHEMA, framing=LengthField(offset=4, length=2))

"""Modbus/TCP.

Specifications: *MODBUS Messaging on TCP/IP Implementation Guide V1.0b* (2006), section 3.1.3
(the MBAP header), and *MODBUS Application Protocol Specification V1.1b3* (2012), section 6
(function codes and their PDUs).

An application data unit (``ADU``) is the 7-byte MBAP header (transaction id, protocol id
0, a length counting the unit id and the PDU, unit id) followed by the PDU (function code
and data). The PDU's data is left as bytes in ``ADU``; parse it with the schema of its
function code and direction (``READ_REGISTERS_REQUEST``, ``READ_REGISTERS_RESPONSE``...), or
with :data:`PDU_REQUESTS`/:data:`PDU_RESPONSES` keyed by function code. An exception
response has the function code's high bit set and one exception-code byte.

TCP port 502.
"""

from __future__ import annotations

import construct as cs
from construct import this

__all__ = [
    "ADU",
    "EXCEPTION_RESPONSE",
    "PDU_REQUESTS",
    "PDU_RESPONSES",
    "PORT",
    "READ_BITS_REQUEST",
    "READ_BITS_RESPONSE",
    "READ_REGISTERS_REQUEST",
    "READ_REGISTERS_RESPONSE",
    "WRITE_MULTIPLE_REGISTERS_REQUEST",
    "WRITE_MULTIPLE_RESPONSE",
    "WRITE_SINGLE",
]

PORT = 502

#: the application data unit: MBAP header, function code, PDU data (Implementation Guide 3.1.3)
ADU = cs.Struct(
    "transaction_id" / cs.Int16ub,
    "protocol_id" / cs.Const(0, cs.Int16ub),
    "length" / cs.Int16ub,  # unit id + function code + data
    "unit_id" / cs.Int8ub,
    "function_code" / cs.Int8ub,
    "data" / cs.Bytes(this.length - 2),
)

# PDU data by function code (Application Protocol 6.1-6.12)
#: 0x01 read coils, 0x02 read discrete inputs: request
READ_BITS_REQUEST = cs.Struct("address" / cs.Int16ub, "quantity" / cs.Int16ub)
#: ... and response: packed bits, LSB first
READ_BITS_RESPONSE = cs.Struct("byte_count" / cs.Int8ub, "status" / cs.Bytes(this.byte_count))
#: 0x03 read holding registers, 0x04 read input registers: request
READ_REGISTERS_REQUEST = cs.Struct("address" / cs.Int16ub, "quantity" / cs.Int16ub)
#: ... and response: ``byte_count`` / 2 registers
READ_REGISTERS_RESPONSE = cs.Struct(
    "byte_count" / cs.Int8ub, "registers" / cs.Array(this.byte_count // 2, cs.Int16ub)
)
#: 0x05 write single coil, 0x06 write single register: request and (echoed) response
WRITE_SINGLE = cs.Struct("address" / cs.Int16ub, "value" / cs.Int16ub)
#: 0x10 write multiple registers: request
WRITE_MULTIPLE_REGISTERS_REQUEST = cs.Struct(
    "address" / cs.Int16ub,
    "quantity" / cs.Int16ub,
    "byte_count" / cs.Int8ub,
    "registers" / cs.Array(this.byte_count // 2, cs.Int16ub),
)
#: 0x0F write multiple coils, 0x10 write multiple registers: response
WRITE_MULTIPLE_RESPONSE = cs.Struct("address" / cs.Int16ub, "quantity" / cs.Int16ub)
#: function code | 0x80: one exception code (Application Protocol 7)
EXCEPTION_RESPONSE = cs.Struct("exception_code" / cs.Int8ub)

PDU_REQUESTS: dict[int, cs.Construct] = {
    0x01: READ_BITS_REQUEST,
    0x02: READ_BITS_REQUEST,
    0x03: READ_REGISTERS_REQUEST,
    0x04: READ_REGISTERS_REQUEST,
    0x05: WRITE_SINGLE,
    0x06: WRITE_SINGLE,
    0x10: WRITE_MULTIPLE_REGISTERS_REQUEST,
}
PDU_RESPONSES: dict[int, cs.Construct] = {
    0x01: READ_BITS_RESPONSE,
    0x02: READ_BITS_RESPONSE,
    0x03: READ_REGISTERS_RESPONSE,
    0x04: READ_REGISTERS_RESPONSE,
    0x05: WRITE_SINGLE,
    0x06: WRITE_SINGLE,
    0x0F: WRITE_MULTIPLE_RESPONSE,
    0x10: WRITE_MULTIPLE_RESPONSE,
}

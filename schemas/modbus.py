"""Modbus/TCP: requests and responses of the data-access functions, exceptions included.

Specifications:

* *MODBUS Messaging on TCP/IP Implementation Guide V1.0b* (2006), section 3.1.3: the MBAP
  header (transaction identifier, protocol identifier 0, a length counting the unit
  identifier and the PDU, unit identifier), then the PDU; TCP port 502 (section 4.1);
* *MODBUS Application Protocol Specification V1.1b3* (2012), section 4.1 (the PDU: a
  function code and its data), section 6 (each function's request and response PDUs):
  6.1 read coils (0x01), 6.2 read discrete inputs (0x02), 6.3 read holding registers
  (0x03), 6.4 read input registers (0x04), 6.5 write single coil (0x05), 6.6 write single
  register (0x06), 6.11 write multiple coils (0x0F), 6.12 write multiple registers (0x10);
  section 7: an exception response is the function code with its high bit set and one
  exception code (``EXCEPTION_CODES``).

The same function code means different PDUs in the two directions, so there are two
schemas: ``REQUEST`` (client to server) and ``RESPONSE`` (server to client), with their
codecs ``REQUEST_CODEC`` and ``RESPONSE_CODEC``. Both are the MBAP header and function
code followed by ``data``, the PDU's data parsed by function code::

    Container(transaction_id=1, protocol_id=0, length=6, unit_id=17, function_code=3,
              data=Container(address=0x6B, quantity=3))              # a REQUEST
    Container(transaction_id=1, protocol_id=0, length=9, unit_id=17, function_code=3,
              data=Container(byte_count=6, registers=[0x022B, 0, 0x64]))  # its RESPONSE

A function code the schemas do not know keeps its data as ``bytes`` (so a server can answer
it with exception 01, illegal function); an exception response's data is
``Container(exception_code=2)``. The data must fill the MBAP length exactly: a PDU too short
or too long for its function is a ``DecodeError``. ``length`` and every ``byte_count`` are
rebuilt when encoding (leave them out). Coil and discrete input states travel packed, eight
to a byte, the first in the least significant bit (6.1): ``pack_bits`` and ``unpack_bits``
convert.

``CLIENT_PROTOCOL`` (encodes requests, decodes responses) and ``SERVER_PROTOCOL`` (the other
way round) are what ``transport.Client`` and ``transport.Server`` take. ``ADU`` is the
direction-free view: the MBAP header, function code and data as bytes.
"""

from __future__ import annotations

from typing import Any

import construct as cs
from construct import this

from codec import Buffer, Codec

__all__ = [
    "ADU",
    "CLIENT_PROTOCOL",
    "EXCEPTION_CODES",
    "EXCEPTION_RESPONSE",
    "MAX_ADU",
    "PDU_REQUESTS",
    "PDU_RESPONSES",
    "PORT",
    "READ_BITS_REQUEST",
    "READ_BITS_RESPONSE",
    "READ_REGISTERS_REQUEST",
    "READ_REGISTERS_RESPONSE",
    "REQUEST",
    "REQUEST_CODEC",
    "RESPONSE",
    "RESPONSE_CODEC",
    "SERVER_PROTOCOL",
    "WRITE_MULTIPLE_COILS_REQUEST",
    "WRITE_MULTIPLE_REGISTERS_REQUEST",
    "WRITE_MULTIPLE_RESPONSE",
    "WRITE_SINGLE",
    "Duplex",
    "pack_bits",
    "unpack_bits",
]

PORT = 502

#: the largest ADU: 7 octets of MBAP header and a 253-octet PDU (Implementation Guide 3.1.3)
MAX_ADU = 260

#: Application Protocol 7: the exception codes a server answers with
EXCEPTION_CODES = {
    "ILLEGAL_FUNCTION": 0x01,
    "ILLEGAL_DATA_ADDRESS": 0x02,
    "ILLEGAL_DATA_VALUE": 0x03,
    "SERVER_DEVICE_FAILURE": 0x04,
    "ACKNOWLEDGE": 0x05,
    "SERVER_DEVICE_BUSY": 0x06,
    "MEMORY_PARITY_ERROR": 0x08,
    "GATEWAY_PATH_UNAVAILABLE": 0x0A,
    "GATEWAY_TARGET_FAILED_TO_RESPOND": 0x0B,
}

#: the application data unit: MBAP header, function code, PDU data as bytes (3.1.3)
ADU = cs.Struct(
    "transaction_id" / cs.Int16ub,
    "protocol_id" / cs.Const(0, cs.Int16ub),
    "length" / cs.Int16ub,  # unit id + function code + data
    "unit_id" / cs.Int8ub,
    "function_code" / cs.Int8ub,
    "data" / cs.Bytes(this.length - 2),
)

# -- PDU data by function code (Application Protocol 6.x) ----------------------------------
#: 0x01 read coils, 0x02 read discrete inputs: request (6.1, 6.2)
READ_BITS_REQUEST = cs.Struct("address" / cs.Int16ub, "quantity" / cs.Int16ub)
#: ... and response: ``byte_count`` octets of packed states (see ``unpack_bits``)
READ_BITS_RESPONSE = cs.Struct(
    "byte_count" / cs.Rebuild(cs.Int8ub, cs.len_(this.status)),
    "status" / cs.Bytes(this.byte_count),
)
#: 0x03 read holding registers, 0x04 read input registers: request (6.3, 6.4)
READ_REGISTERS_REQUEST = cs.Struct("address" / cs.Int16ub, "quantity" / cs.Int16ub)
#: ... and response: ``byte_count`` / 2 registers
READ_REGISTERS_RESPONSE = cs.Struct(
    "byte_count" / cs.Rebuild(cs.Int8ub, cs.len_(this.registers) * 2),
    "registers" / cs.Array(this.byte_count // 2, cs.Int16ub),
)
#: 0x05 write single coil (value 0xFF00 on, 0x0000 off), 0x06 write single register:
#: request and its echo, the response (6.5, 6.6)
WRITE_SINGLE = cs.Struct("address" / cs.Int16ub, "value" / cs.Int16ub)
#: 0x0F write multiple coils: request (6.11), ``quantity`` states packed in ``outputs``
WRITE_MULTIPLE_COILS_REQUEST = cs.Struct(
    "address" / cs.Int16ub,
    "quantity" / cs.Int16ub,
    "byte_count" / cs.Rebuild(cs.Int8ub, cs.len_(this.outputs)),
    "outputs" / cs.Bytes(this.byte_count),
)
#: 0x10 write multiple registers: request (6.12)
WRITE_MULTIPLE_REGISTERS_REQUEST = cs.Struct(
    "address" / cs.Int16ub,
    "quantity" / cs.Int16ub,
    "byte_count" / cs.Rebuild(cs.Int8ub, cs.len_(this.registers) * 2),
    "registers" / cs.Array(this.byte_count // 2, cs.Int16ub),
)
#: 0x0F write multiple coils, 0x10 write multiple registers: response (6.11, 6.12)
WRITE_MULTIPLE_RESPONSE = cs.Struct("address" / cs.Int16ub, "quantity" / cs.Int16ub)
#: function code | 0x80: one exception code (7)
EXCEPTION_RESPONSE = cs.Struct("exception_code" / cs.Int8ub)

PDU_REQUESTS: dict[int, cs.Construct] = {
    0x01: READ_BITS_REQUEST,
    0x02: READ_BITS_REQUEST,
    0x03: READ_REGISTERS_REQUEST,
    0x04: READ_REGISTERS_REQUEST,
    0x05: WRITE_SINGLE,
    0x06: WRITE_SINGLE,
    0x0F: WRITE_MULTIPLE_COILS_REQUEST,
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

#: the ``Switch`` key of every exception response
_EXCEPTION = 0x80


#: what must be left of the PDU's data once its body is parsed: nothing (construct's
#: ``FixedSized`` would ignore octets left over). Written as a constant rather than
#: ``Terminated`` because the codec compiles it (``Terminated`` costs a call into construct
#: per message: 5x the decoding time of a request).
_NOTHING_LEFT = cs.Const(b"", cs.GreedyBytes)


def _exact(body: cs.Construct) -> cs.Construct:
    """``body``, which must use up the PDU's data exactly."""
    return cs.FocusedSeq("body", "body" / body, _NOTHING_LEFT)


#: the response's ``Switch`` key: the function code, or ``_EXCEPTION`` for every code with
#: its high bit set. Written as a ``this`` expression (code - (code - 0x80) when code >=
#: 0x80, else code - 0) because the codec compiles those to arithmetic on locals, where a
#: function would cost a construct context per message (4x a response's decoding time).
_RESPONSE_KEY = this.function_code - (this.function_code - _EXCEPTION) * (
    this.function_code >= _EXCEPTION
)


_REQUEST_DATA = cs.Switch(
    this.function_code, {k: _exact(v) for k, v in PDU_REQUESTS.items()}, default=cs.GreedyBytes
)
_RESPONSE_DATA = cs.Switch(
    _RESPONSE_KEY,
    {**{k: _exact(v) for k, v in PDU_RESPONSES.items()}, _EXCEPTION: _exact(EXCEPTION_RESPONSE)},
    default=cs.GreedyBytes,
)


def _adu(data: cs.Construct) -> cs.Construct:
    def length(ctx: Any) -> int:
        return 2 + len(data.build(ctx.data, function_code=ctx.function_code))

    return cs.Struct(
        "transaction_id" / cs.Int16ub,
        "protocol_id" / cs.Const(0, cs.Int16ub),
        "length" / cs.Rebuild(cs.Int16ub, length),  # unit id + function code + data
        "unit_id" / cs.Int8ub,
        "function_code" / cs.Int8ub,
        "data" / cs.FixedSized(this.length - 2, data),
    )


#: a request ADU, its data parsed by function code (unknown codes: bytes)
REQUEST = _adu(_REQUEST_DATA)
#: a response ADU, its data parsed by function code, exception responses included
RESPONSE = _adu(_RESPONSE_DATA)

REQUEST_CODEC: Codec[Any] = Codec(REQUEST, max_frame_size=MAX_ADU)
RESPONSE_CODEC: Codec[Any] = Codec(RESPONSE, max_frame_size=MAX_ADU)


class Duplex:
    """A ``codec.Protocol`` that decodes with one codec and encodes with another.

    A connection's two directions carry different messages here (requests one way,
    responses the other), while ``transport`` takes one protocol per connection.
    """

    def __init__(self, decoder: Codec[Any], encoder: Codec[Any]) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.max_frame_size = decoder.max_frame_size

    def decode(self, buf: Buffer) -> Any:
        return self.decoder.decode(buf)

    def encode(self, msg: Any) -> bytes:
        return self.encoder.encode(msg)

    def __repr__(self) -> str:
        return f"Duplex(decoder={self.decoder!r}, encoder={self.encoder!r})"


#: for a client: sends requests, receives responses
CLIENT_PROTOCOL = Duplex(RESPONSE_CODEC, REQUEST_CODEC)
#: for a server: receives requests, sends responses
SERVER_PROTOCOL = Duplex(REQUEST_CODEC, RESPONSE_CODEC)


def pack_bits(states: list[bool]) -> bytes:
    """Coil or input states -> octets, eight a byte, the first state in bit 0 (6.1, 6.11)."""
    out = bytearray((len(states) + 7) // 8)
    for i, on in enumerate(states):
        if on:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def unpack_bits(data: bytes, count: int) -> list[bool]:
    """The first ``count`` states packed in ``data`` (the rest of the last octet is padding)."""
    if count > 8 * len(data):
        raise ValueError(f"{count} states do not fit in {len(data)} octets")
    return [bool(data[i // 8] >> (i % 8) & 1) for i in range(count)]

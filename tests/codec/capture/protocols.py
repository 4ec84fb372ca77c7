"""The two protocols the tshark comparison uses (Modbus/TCP from :mod:`schemas`, and a
simple layout of DNS over TCP/UDP), and helpers that build their messages for crafted
captures.
"""

from __future__ import annotations

import construct as cs
from construct import this

from schemas import modbus

#: Modbus/TCP application data unit: MBAP header, function code, the rest of the PDU
MODBUS = modbus.ADU

#: PDU bodies of "read holding registers" (function code 3), by direction
READ_REQUEST = modbus.READ_REGISTERS_REQUEST
READ_RESPONSE = modbus.READ_REGISTERS_RESPONSE


def modbus_read(tid: int, address: int, registers: list[int], unit: int = 1) -> tuple[bytes, bytes]:
    """A request/response pair reading ``len(registers)`` holding registers."""
    req = READ_REQUEST.build({"address": address, "quantity": len(registers)})
    resp = READ_RESPONSE.build({"byte_count": 2 * len(registers), "registers": registers})
    return (
        MODBUS.build(
            {
                "transaction_id": tid,
                "length": 2 + len(req),
                "unit_id": unit,
                "function_code": 3,
                "data": req,
            }
        ),
        MODBUS.build(
            {
                "transaction_id": tid,
                "length": 2 + len(resp),
                "unit_id": unit,
                "function_code": 3,
                "data": resp,
            }
        ),
    )


# These tests exercise the capture machinery (reassembly, filters, the command line), so
# their DNS stays the simplest layout that tshark still dissects: the header and questions
# parsed, the other sections kept as bytes, names as label lists (a pointer is refused).
# schemas.dns is the full format (records, compression), compared with tshark in
# tests/schemas/test_modbus_dns_tshark.py.
DNS_NAME = cs.RepeatUntil(
    lambda label, labels, ctx: label == "",
    cs.PascalString(cs.ExprValidator(cs.Int8ub, lambda length, ctx: length <= 63), "ascii"),
)
DNS_QUESTION = cs.Struct("qname" / DNS_NAME, "qtype" / cs.Int16ub, "qclass" / cs.Int16ub)

#: a DNS message without its length prefix (DNS over UDP)
DNS = cs.Struct(
    "id" / cs.Int16ub,
    "flags" / cs.Int16ub,
    "qdcount" / cs.Int16ub,
    "ancount" / cs.Int16ub,
    "nscount" / cs.Int16ub,
    "arcount" / cs.Int16ub,
    "questions" / cs.Array(this.qdcount, DNS_QUESTION),
    "rest" / cs.GreedyBytes,
)

#: DNS over TCP (RFC 1035 4.2.2): a 2-byte length, then the message
DNS_TCP = cs.Prefixed(cs.Int16ub, DNS)


def dns_name(name: str) -> list[str]:
    return [*name.rstrip(".").split("."), ""]


def dns_query(qid: int, names: list[str], qtype: int = 1) -> dict[str, object]:
    return {
        "id": qid,
        "flags": 0x0100,
        "qdcount": len(names),
        "ancount": 0,
        "nscount": 0,
        "arcount": 0,
        "questions": [{"qname": dns_name(n), "qtype": qtype, "qclass": 1} for n in names],
        "rest": b"",
    }


def dns_answer_a(qid: int, name: str, addr: bytes) -> dict[str, object]:
    """A response with one A record (name compressed to a pointer at the question)."""
    rr = b"\xc0\x0c" + b"\x00\x01\x00\x01" + b"\x00\x00\x01\x2c" + b"\x00\x04" + addr
    return {
        "id": qid,
        "flags": 0x8180,
        "qdcount": 1,
        "ancount": 1,
        "nscount": 0,
        "arcount": 0,
        "questions": [{"qname": dns_name(name), "qtype": 1, "qclass": 1}],
        "rest": rr,
    }

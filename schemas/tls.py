"""The TLS record layer, handshake headers and the ClientHello (RFC 8446), for routing or
logging by server name without terminating TLS.

Specification: RFC 8446 *TLS 1.3*, section 5.1 (TLSPlaintext: content type, legacy record
version, 16-bit length, fragment), 5.2 (no record longer than 2^14 + 256 bytes), 4 (the
handshake header: msg_type and a 24-bit length), 4.1.2 (ClientHello: legacy_version,
random, legacy_session_id, cipher_suites, legacy_compression_methods, extensions), 4.2
(extensions as type and opaque data), 3.4 (vectors: a length in bytes, then items that
fill it exactly); RFC 6066 section 3 (server_name), RFC 7301 section 3.1 (ALPN).
Records of TLS 1.0-1.2 have the same layout, so their ClientHellos decode too (their
extensions block may be absent: ``extensions`` is then ``None``).

* :data:`RECORD` / :data:`RECORD_CODEC`: one record; the fragment is left as bytes (after
  the handshake it is encrypted). A content type outside RFC 8446's table (and 24,
  heartbeat) is refused at once: the bytes are not TLS.
* :data:`HANDSHAKE` / :data:`HANDSHAKE_CODEC`: one handshake message, decoded from the
  concatenated fragments of handshake records (a message may span records and a record
  may hold several messages, section 5.1); a ClientHello's body is :data:`CLIENT_HELLO`,
  other bodies stay bytes.
* :data:`CLIENT_HELLO`: section 4.1.2's structure. Extensions are (``type``, ``data``);
  ``data`` is decoded for server_name, supported_versions, supported_groups,
  signature_algorithms and ALPN, bytes for the others (and for GREASE values, RFC 8701).
* :func:`read_client_hello` reassembles the ClientHello from the first bytes of a
  connection; :func:`sni` gives its host name.
"""

from __future__ import annotations

from typing import Any

import construct as cs
from construct import this

from codec import Buffer, Codec, DecodeError, IncompleteFrame

__all__ = [
    "CIPHER_SUITE",
    "CLIENT_HELLO",
    "CONTENT_TYPE",
    "EXTENSION",
    "EXTENSION_TYPE",
    "HANDSHAKE",
    "HANDSHAKE_CODEC",
    "HANDSHAKE_TYPE",
    "MAX_FRAGMENT",
    "MAX_RECORD_SIZE",
    "RECORD",
    "RECORD_CODEC",
    "SERVER_NAME_LIST",
    "read_client_hello",
    "sni",
]

#: section 5.2: a record's fragment is at most 2^14 + 256 bytes (2^14 in plaintext)
MAX_FRAGMENT = (1 << 14) + 256
#: the record header (5 bytes) and the largest fragment
MAX_RECORD_SIZE = 5 + MAX_FRAGMENT


class _Rule(cs.Check):  # type: ignore[misc]
    """A ``Check`` whose failure names the rule of the specification that was broken."""

    def __init__(self, func: Any, message: str) -> None:
        super().__init__(func)
        self.message = message

    def _parse(self, stream: Any, context: Any, path: str) -> None:
        if not cs.evaluate(self.func, context):
            raise cs.CheckError(self.message, path=path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> None:
        self._parse(stream, context, path)


def _vector(length: cs.Construct, item: cs.Construct) -> cs.Construct:
    """Section 3.4: a vector ``item<..>``: its length in bytes, then items filling it
    exactly (a stray byte at its end is an error, not silently dropped)."""
    return cs.Prefixed(
        length, cs.FocusedSeq("items", "items" / cs.GreedyRange(item), cs.Terminated)
    )


# -- section 5.1: records ------------------------------------------------------------------
#: section 5.1's ContentType (with RFC 6520's heartbeat)
CONTENT_TYPE = cs.Enum(
    cs.Int8ub,
    change_cipher_spec=20,
    alert=21,
    handshake=22,
    application_data=23,
    heartbeat=24,
)

#: one record (section 5.1)
RECORD = cs.Struct(
    "type" / CONTENT_TYPE,
    _Rule(lambda this: isinstance(this.type, str), "RFC 8446 5.1: unknown content type: not TLS"),
    "legacy_record_version" / cs.Int16ub,
    "length" / cs.Int16ub,
    _Rule(
        lambda this: this.length <= MAX_FRAGMENT,
        "RFC 8446 5.2: a record's fragment is at most 2^14 + 256 bytes",
    ),
    _Rule(
        lambda this: this.length > 0 or this.type == "application_data",
        "RFC 8446 5.1: handshake, alert and change_cipher_spec fragments are never empty",
    ),
    "fragment" / cs.Bytes(this.length),
)

#: records, one per ``decode`` (a frame over the section 5.2 limit: ``FrameTooLarge`` at once)
RECORD_CODEC: Codec[cs.Container] = Codec(RECORD, max_frame_size=MAX_RECORD_SIZE)


# -- section 4.2 and its companions: extensions --------------------------------------------
#: the extension types of RFC 8446 section 4.2 and the RFCs it lists, by their RFC names
EXTENSION_TYPE = cs.Enum(
    cs.Int16ub,
    server_name=0,
    max_fragment_length=1,
    status_request=5,
    supported_groups=10,
    ec_point_formats=11,
    signature_algorithms=13,
    use_srtp=14,
    heartbeat=15,
    application_layer_protocol_negotiation=16,
    signed_certificate_timestamp=18,
    client_certificate_type=19,
    server_certificate_type=20,
    padding=21,
    encrypt_then_mac=22,
    extended_master_secret=23,
    compress_certificate=27,
    record_size_limit=28,
    session_ticket=35,
    pre_shared_key=41,
    early_data=42,
    supported_versions=43,
    cookie=44,
    psk_key_exchange_modes=45,
    certificate_authorities=47,
    oid_filters=48,
    post_handshake_auth=49,
    signature_algorithms_cert=50,
    key_share=51,
    renegotiation_info=0xFF01,
)

#: RFC 6066 section 3: ``ServerName server_name_list<1..2^16-1>``; host_name is type 0
SERVER_NAME_LIST = _vector(
    cs.Int16ub,
    cs.Struct(
        "name_type" / cs.Enum(cs.Int8ub, host_name=0),
        "name" / cs.Prefixed(cs.Int16ub, cs.GreedyBytes),
    ),
)

#: the extension bodies decoded (a ClientHello's forms of them)
_BODIES = {
    "server_name": SERVER_NAME_LIST,
    # 4.2.1: ProtocolVersion versions<2..254>
    "supported_versions": _vector(cs.Int8ub, cs.Int16ub),
    # 4.2.7: NamedGroup named_group_list<2..2^16-1>
    "supported_groups": _vector(cs.Int16ub, cs.Int16ub),
    # 4.2.3: SignatureScheme supported_signature_algorithms<2..2^16-2>
    "signature_algorithms": _vector(cs.Int16ub, cs.Int16ub),
    # RFC 7301 3.1: ProtocolName protocol_name_list<2..2^16-1>, names are opaque<1..2^8-1>
    "application_layer_protocol_negotiation": _vector(
        cs.Int16ub, cs.PascalString(cs.Int8ub, "ascii")
    ),
}

#: section 4.2: ``Extension``: a type and its data (decoded for the types above)
EXTENSION = cs.Struct(
    "type" / EXTENSION_TYPE,
    "data" / cs.Prefixed(cs.Int16ub, cs.Switch(this.type, _BODIES, default=cs.GreedyBytes)),
)

#: section 4.1.2's CipherSuite: two bytes, kept as one number (0x1301 = TLS_AES_128_GCM_SHA256)
CIPHER_SUITE = cs.Int16ub

#: section 4.1.2: the ClientHello (a handshake message's body)
CLIENT_HELLO = cs.Struct(
    "legacy_version" / cs.Int16ub,
    "random" / cs.Bytes(32),
    "legacy_session_id" / cs.Prefixed(cs.Int8ub, cs.GreedyBytes),
    _Rule(
        lambda this: len(this.legacy_session_id) <= 32,
        "RFC 8446 4.1.2: legacy_session_id is at most 32 bytes",
    ),
    "cipher_suites" / _vector(cs.Int16ub, CIPHER_SUITE),
    "legacy_compression_methods" / cs.Prefixed(cs.Int8ub, cs.GreedyBytes),
    # absent in some TLS 1.0-1.2 ClientHellos (RFC 5246 7.4.1.2): then None
    "extensions" / cs.Optional(_vector(cs.Int16ub, EXTENSION)),
    cs.Terminated,
)

# -- section 4: handshake messages ---------------------------------------------------------
#: section 4's HandshakeType (with TLS 1.2's messages, RFC 5246 7.4)
HANDSHAKE_TYPE = cs.Enum(
    cs.Int8ub,
    hello_request=0,
    client_hello=1,
    server_hello=2,
    new_session_ticket=4,
    end_of_early_data=5,
    encrypted_extensions=8,
    certificate=11,
    server_key_exchange=12,
    certificate_request=13,
    server_hello_done=14,
    certificate_verify=15,
    client_key_exchange=16,
    finished=20,
    key_update=24,
    message_hash=254,
)

#: one handshake message (section 4): type, 24-bit length, body
HANDSHAKE = cs.Struct(
    "msg_type" / HANDSHAKE_TYPE,
    "length" / cs.Int24ub,
    "body"
    / cs.FixedSized(
        this.length,
        cs.Switch(this.msg_type, {"client_hello": CLIENT_HELLO}, default=cs.GreedyBytes),
    ),
)

#: handshake messages from the concatenated fragments of handshake records; a message is
#: at most 2^24 - 1 bytes, more than anyone needs before authentication: 64 KiB here
HANDSHAKE_CODEC: Codec[cs.Container] = Codec(HANDSHAKE, max_frame_size=4 + 0xFFFF)


# -- the first bytes of a connection -------------------------------------------------------
_HANDSHAKE = 22


def read_client_hello(data: bytes | bytearray | memoryview) -> cs.Container | None:
    """The ClientHello handshake message (a :data:`HANDSHAKE` Container) at the start of a
    TLS connection's client bytes, reassembled from as many handshake records as it spans.

    ``None`` while ``data`` does not yet hold all of it; ``DecodeError`` when the bytes are
    not TLS, or the first record or message is not a handshake / ClientHello (section 4.1.2:
    it comes first).
    """
    if data and data[0] != _HANDSHAKE:  # refused at the first byte, not after a "length"
        raise DecodeError(
            "RFC 8446 4: a TLS connection starts with a handshake record (content type 22)",
            offset=0,
            data=bytes(data[:16]),
        )
    records = Buffer(data)
    handshake = Buffer()
    while True:
        record = RECORD_CODEC.decode(records)
        if record is None:
            return None
        if record.type != "handshake":
            raise DecodeError(
                f"RFC 8446 4: the connection starts with a {record.type} record, "
                "not the ClientHello's handshake record",
                offset=records.offset - 5 - record.length,
                data=bytes(data[:16]),
            )
        if not handshake and record.fragment[0] != 1:
            raise DecodeError(
                "RFC 8446 4.1.2: the first handshake message is not a ClientHello",
                offset=records.offset - record.length,
                data=record.fragment[:16],
            )
        handshake.extend(record.fragment)
        message = HANDSHAKE_CODEC.decode(handshake)
        if message is not None:
            return message


def _host_name(hello: cs.Container) -> str | None:
    for ext in hello.extensions or ():
        if ext.type == "server_name":
            for name in ext.data:
                if name.name_type == "host_name":
                    try:
                        return str(name.name.decode("ascii"))  # RFC 6066 3: ASCII
                    except UnicodeDecodeError as exc:
                        raise DecodeError(
                            "RFC 6066 3: the host name is not ASCII", data=name.name
                        ) from exc
    return None


def sni(source: bytes | bytearray | memoryview | cs.Container) -> str | None:
    """The server name a client asked for (RFC 6066 section 3), or ``None`` without one.

    ``source`` is the first bytes of a connection (the ClientHello is reassembled from its
    records; ``IncompleteFrame`` while it is not all there, so read more and call again),
    or an already decoded record, handshake message or ClientHello body.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        message = read_client_hello(source)
        if message is None:
            raise IncompleteFrame("the ClientHello is not complete yet", offset=0)
        return _host_name(message.body)
    if "fragment" in source:  # a record
        message = HANDSHAKE_CODEC.decode(Buffer(source.fragment))
        if message is None:
            raise IncompleteFrame("the ClientHello continues in the next record", offset=0)
        return sni(message)
    if "msg_type" in source:  # a handshake message
        if source.msg_type != "client_hello":
            return None
        return _host_name(source.body)
    return _host_name(source)

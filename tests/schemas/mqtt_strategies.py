"""Hypothesis strategies of valid MQTT packets, one per packet type, for ``check_codec``.

Written by hand rather than drawn by ``codec.testing.from_schema``: the schemas end their
property ``Switch`` in ``cs.Error`` (an unknown property cannot be skipped), which
``from_schema`` cannot derive, and hand-written strategies keep each packet as the
specification shapes it (fixed header flags of each type, connect flags that agree with the
payload, a reason code before any properties).
"""

from __future__ import annotations

from typing import Any

import construct as cs
from hypothesis import strategies as st

from schemas import mqtt, mqtt5

_text = st.text(max_size=8)
_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFF_FFFF)
_varint = st.integers(0, 268_435_455)  # 1.5.5: at most four bytes
_binary = st.binary(max_size=8)

_BY_TYPE: dict[Any, st.SearchStrategy[Any]] = {
    mqtt5.BINARY: _binary,
    mqtt5.STRING: _text,
    mqtt5.STRING_PAIR: st.fixed_dictionaries({"name": _text, "value": _text}),
}
_INTS = {1: _u8, 2: _u16, 4: _u32}


def _value(subcon: Any) -> st.SearchStrategy[Any]:
    if subcon in _BY_TYPE:
        return _BY_TYPE[subcon]
    if subcon is cs.VarInt:
        return _varint
    return _INTS[subcon.sizeof()]


def _property(name: str, subcon: Any) -> st.SearchStrategy[dict[str, Any]]:
    return _value(subcon).map(lambda v: {"id": name, "value": v})


#: one property of any identifier, with a value of its type (2.2.2.2)
PROPERTY = st.one_of(
    *(_property(name, subcon) for name, subcon in mqtt5.PROPERTY.value.cases.items())
)
PROPERTIES = st.lists(PROPERTY, max_size=4)


def _reason(enum: Any) -> st.SearchStrategy[Any]:
    """A reason code of the packet's table by name, or a byte outside it (unknown codes
    decode as integers: the schema leaves them to the application)."""
    known = set(enum.decmapping)
    return st.sampled_from(sorted(enum.encmapping)) | _u8.filter(lambda b: b not in known)


def _header(kind: str, qos: int = 0, dup: bool = False, retain: bool = False) -> dict[str, Any]:
    return {"type": kind, "dup": dup, "qos": qos, "retain": retain}


def _packet(kind: str, body: st.SearchStrategy[Any], qos: int = 0) -> st.SearchStrategy[Any]:
    return body.map(lambda b: {"header": _header(kind, qos), "body": b})


def _tail(enum: Any) -> st.SearchStrategy[dict[str, Any]]:
    """An optional reason code and properties: none, a reason code, or both (3.4.2.1)."""
    return st.one_of(
        st.just({"reason_code": None, "properties": None}),
        _reason(enum).map(lambda r: {"reason_code": r, "properties": None}),
        st.builds(lambda r, p: {"reason_code": r, "properties": p}, _reason(enum), PROPERTIES),
    )


def _with_id(tail: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda pid, t: {"packet_id": pid, **t}, _u16, tail)


@st.composite
def _connect(draw: st.DrawFn) -> dict[str, Any]:
    will = draw(st.booleans())
    username = draw(st.booleans())
    password = draw(st.booleans())
    flags = {
        "username": username,
        "password": password,
        "will_retain": will and draw(st.booleans()),
        "will_qos": draw(st.integers(0, 2)) if will else 0,
        "will": will,
        "clean_start": draw(st.booleans()),
        "reserved": 0,
    }
    body = {
        "protocol_name": "MQTT",
        "protocol_level": 5,
        "flags": flags,
        "keep_alive": draw(_u16),
        "properties": draw(PROPERTIES),
        "client_id": draw(_text),
        "will_properties": draw(PROPERTIES) if will else None,
        "will_topic": draw(_text) if will else None,
        "will_payload": draw(_binary) if will else None,
        "username": draw(_text) if username else None,
        "password": draw(_binary) if password else None,
    }
    return {"header": _header("CONNECT"), "body": body}


@st.composite
def _publish(draw: st.DrawFn) -> dict[str, Any]:
    qos = draw(st.integers(0, 2))
    body = {
        "topic": draw(_text),
        "packet_id": draw(st.integers(1, 0xFFFF)) if qos else None,
        "properties": draw(PROPERTIES),
        "payload": draw(st.binary(max_size=300)),
    }
    header = _header(
        "PUBLISH", qos, dup=qos > 0 and draw(st.booleans()), retain=draw(st.booleans())
    )
    return {"header": header, "body": body}


_options = st.fixed_dictionaries(
    {
        "reserved": st.just(0),
        "retain_handling": st.integers(0, 2),
        "retain_as_published": st.booleans(),
        "no_local": st.booleans(),
        "qos": st.integers(0, 2),
    }
)

#: a strategy of valid packets for each MQTT 5.0 packet type (chapter 3)
MQTT5_PACKETS: dict[str, st.SearchStrategy[Any]] = {
    "CONNECT": _connect(),
    "CONNACK": _packet(
        "CONNACK",
        st.fixed_dictionaries(
            {
                "flags": st.fixed_dictionaries({"session_present": st.booleans()}),
                "reason_code": _reason(mqtt5.CONNACK_REASON),
                "properties": PROPERTIES,
            }
        ),
    ),
    "PUBLISH": _publish(),
    "PUBACK": _packet("PUBACK", _with_id(_tail(mqtt5.PUBACK_REASON))),
    "PUBREC": _packet("PUBREC", _with_id(_tail(mqtt5.PUBACK_REASON))),
    "PUBREL": _packet("PUBREL", _with_id(_tail(mqtt5.PUBREL_REASON)), qos=1),
    "PUBCOMP": _packet("PUBCOMP", _with_id(_tail(mqtt5.PUBREL_REASON))),
    "SUBSCRIBE": _packet(
        "SUBSCRIBE",
        st.fixed_dictionaries(
            {
                "packet_id": st.integers(1, 0xFFFF),
                "properties": PROPERTIES,
                "topics": st.lists(
                    st.fixed_dictionaries({"filter": _text, "options": _options}),
                    min_size=1,
                    max_size=4,
                ),
            }
        ),
        qos=1,
    ),
    "SUBACK": _packet(
        "SUBACK",
        st.fixed_dictionaries(
            {
                "packet_id": _u16,
                "properties": PROPERTIES,
                "reason_codes": st.lists(_reason(mqtt5.SUBACK_REASON), max_size=4),
            }
        ),
    ),
    "UNSUBSCRIBE": _packet(
        "UNSUBSCRIBE",
        st.fixed_dictionaries(
            {
                "packet_id": st.integers(1, 0xFFFF),
                "properties": PROPERTIES,
                "topics": st.lists(_text, min_size=1, max_size=4),
            }
        ),
        qos=1,
    ),
    "UNSUBACK": _packet(
        "UNSUBACK",
        st.fixed_dictionaries(
            {
                "packet_id": _u16,
                "properties": PROPERTIES,
                "reason_codes": st.lists(_reason(mqtt5.UNSUBACK_REASON), max_size=4),
            }
        ),
    ),
    "PINGREQ": _packet("PINGREQ", st.just({})),
    "PINGRESP": _packet("PINGRESP", st.just({})),
    "DISCONNECT": _packet("DISCONNECT", _tail(mqtt5.DISCONNECT_REASON)),
    "AUTH": _packet("AUTH", _tail(mqtt5.AUTH_REASON)),
}


@st.composite
def _connect311(draw: st.DrawFn) -> dict[str, Any]:
    will = draw(st.booleans())
    username = draw(st.booleans())
    password = username and draw(st.booleans())  # 3.1.2.9: no password without a user name
    flags = {
        "username": username,
        "password": password,
        "will_retain": will and draw(st.booleans()),
        "will_qos": draw(st.integers(0, 2)) if will else 0,
        "will": will,
        "clean_session": draw(st.booleans()),
        "reserved": 0,
    }
    body = {
        "protocol_name": "MQTT",
        "protocol_level": 4,
        "flags": flags,
        "keep_alive": draw(_u16),
        "client_id": draw(_text),
        "will_topic": draw(_text) if will else None,
        "will_message": draw(_binary) if will else None,
        "username": draw(_text) if username else None,
        "password": draw(_binary) if password else None,
    }
    return {"header": _header("CONNECT"), "body": body}


@st.composite
def _publish311(draw: st.DrawFn) -> dict[str, Any]:
    qos = draw(st.integers(0, 2))
    body = {
        "topic": draw(_text),
        "packet_id": draw(st.integers(1, 0xFFFF)) if qos else None,
        "payload": draw(st.binary(max_size=300)),
    }
    header = _header(
        "PUBLISH", qos, dup=qos > 0 and draw(st.booleans()), retain=draw(st.booleans())
    )
    return {"header": header, "body": body}


_packet_id = st.fixed_dictionaries({"packet_id": _u16})

#: a strategy of valid packets for each MQTT 3.1.1 packet type (chapter 3)
MQTT_PACKETS: dict[str, st.SearchStrategy[Any]] = {
    "CONNECT": _connect311(),
    "CONNACK": _packet(
        "CONNACK",
        st.fixed_dictionaries(
            {
                "flags": st.fixed_dictionaries({"session_present": st.booleans()}),
                "return_code": st.sampled_from(sorted(mqtt.RETURN_CODE.encmapping)),
            }
        ),
    ),
    "PUBLISH": _publish311(),
    "PUBACK": _packet("PUBACK", _packet_id),
    "PUBREC": _packet("PUBREC", _packet_id),
    "PUBREL": _packet("PUBREL", _packet_id, qos=1),
    "PUBCOMP": _packet("PUBCOMP", _packet_id),
    "SUBSCRIBE": _packet(
        "SUBSCRIBE",
        st.fixed_dictionaries(
            {
                "packet_id": st.integers(1, 0xFFFF),
                "topics": st.lists(
                    st.fixed_dictionaries({"filter": _text, "qos": st.integers(0, 2)}),
                    min_size=1,
                    max_size=4,
                ),
            }
        ),
        qos=1,
    ),
    "SUBACK": _packet(
        "SUBACK",
        st.fixed_dictionaries(
            {
                "packet_id": _u16,
                "return_codes": st.lists(st.sampled_from([0, 1, 2, 0x80]), max_size=4),
            }
        ),
    ),
    "UNSUBSCRIBE": _packet(
        "UNSUBSCRIBE",
        st.fixed_dictionaries(
            {"packet_id": st.integers(1, 0xFFFF), "topics": st.lists(_text, min_size=1, max_size=4)}
        ),
        qos=1,
    ),
    "UNSUBACK": _packet("UNSUBACK", _packet_id),
    "PINGREQ": _packet("PINGREQ", st.just({})),
    "PINGRESP": _packet("PINGRESP", st.just({})),
    "DISCONNECT": _packet("DISCONNECT", st.just({})),
}

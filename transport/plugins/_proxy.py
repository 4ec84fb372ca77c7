"""`ProxyProtocol`: the real client's address, from the PROXY header a load balancer sends.

HAProxy's PROXY protocol (versions 1 and 2): a balancer that accepted a client's connection
opens its own to the server and sends, first thing, a header naming the client. The plugin
takes that header out of the receive buffer before the codec sees a byte
(``before_decode``), then ``session.set_remote_address(real client)``; the header itself is
kept in ``session.attributes["proxy_header"]`` (TLVs included).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from codec import Buffer, DecodeError

from .._processor import Plugin
from .._session import Session
from .._state import StateEvent
from ._blacklist import AddressSet, IPAddress, IPNetwork, peer_ip

if TYPE_CHECKING:
    from schemas.proxy import ProxyHeader

__all__ = ["ProxyProtocol", "ProxyProtocolError"]

logger = logging.getLogger("transport.plugins")

#: section 2.2: the version 2 signature; section 2.1: how a version 1 line starts
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
#: section 2.1: the longest version 1 line, CRLF included
MAX_V1 = 107

#: events after which a connection's state is no longer needed (a session refused by a
#: later plugin's ``accept`` never sees ``SESSION_CLOSED``)
_FINAL = (
    StateEvent.SESSION_CLOSED,
    StateEvent.REJECT_ACCEPT,
    StateEvent.ACCEPT_EXCEPTION,
    StateEvent.INTERNAL_EXCEPTION,
)


class ProxyProtocolError(ValueError):
    """Why :class:`ProxyProtocol` refused a connection's input: a malformed header, a
    missing required one, or a header from a peer that is not a trusted proxy. Delivered
    as ``INPUT_EXCEPTION``'s exception (the connection is closed; no other is touched)."""


def _could_be_header(data: bytes) -> bool | None:
    """``True``: ``data`` starts like a PROXY header; ``False``: it cannot be one;
    ``None``: too few bytes to tell."""
    if data.startswith((SIGNATURE, V1_PREFIX)):
        return True
    if SIGNATURE.startswith(data) or V1_PREFIX.startswith(data):
        return None
    return False


class ProxyProtocol(Plugin[Any]):
    """Reads the PROXY protocol header (version 1 text or version 2 binary) that a trusted
    load balancer sends first, and makes ``session.remote_address`` the real client's.
    The header is parsed by :func:`schemas.proxy.parse_header` (HAProxy's specification,
    TLVs kept, a CRC32c TLV checked).

    ``trusted``: the balancers' addresses or CIDR networks (IPv4/IPv6); peers on a Unix
    socket are trusted too (the socket file's permissions say who may connect).
    ``required``: every connection must come from a trusted peer and start with a header.

    What happens to a connection:

    * trusted peer, header present: the header is consumed; ``remote_address`` becomes the
      client's ``(host, port)`` (left as is for a ``LOCAL`` health check, version 1
      ``UNKNOWN``, or a header without addresses); the :class:`schemas.proxy.ProxyHeader`
      is in ``session.attributes["proxy_header"]``;
    * untrusted peer, ``required=True``: refused before ``NEW_SESSION`` (``REJECT_ACCEPT``,
      reason in ``session.attributes["reject_reason"]``);
    * a malformed header, a missing required header, or (``required=False``) a header from
      an untrusted peer: ``INPUT_EXCEPTION`` with a :class:`ProxyProtocolError` saying
      which, then the connection closes; no message is processed, no other connection is
      disturbed;
    * ``required=False``, no header: the bytes are the application's, untouched. The first
      bytes are looked at to tell: a connection whose data starts like a header (``PROXY``
      or ``\\r\\n\\r\\n``) waits until it can be told apart.

    Limits of where the plugin sits: ``NEW_SESSION`` (and plugins that decide at
    ``accept`` or ``NEW_SESSION``, such as ``BlackList`` or ``RateLimit(per="address")``)
    see the balancer's address; the client's is set before the first message is processed.
    The header is read from the decrypted stream: with ``ssl_context``, the balancer must
    speak TLS to the server and send the header inside it (a header sent before a TLS
    handshake it passes through is not supported). A balancer that connects and sends
    nothing is left to an :class:`IdleTimeout`.
    """

    def __init__(
        self,
        trusted: Iterable[str | IPAddress | IPNetwork] = ("127.0.0.1/32", "::1/128"),
        required: bool = True,
    ) -> None:
        from schemas.proxy import parse_header  # (imported here: it builds its codecs)

        self._parse_header = parse_header
        self.trusted = AddressSet(trusted)
        self.required = required
        #: sessions whose header (from a trusted peer) is still awaited
        self._awaited: set[Session[Any]] = set()
        #: sessions of untrusted peers whose first bytes are still to be checked
        self._watched: set[Session[Any]] = set()

    def __repr__(self) -> str:
        return f"ProxyProtocol(trusted={self.trusted!r}, required={self.required})"

    def is_trusted(self, address: Any) -> bool:
        """Whether a peer at ``address`` (a ``remote_address``) may send a header."""
        ip = peer_ip(address)
        if ip is None:
            return not isinstance(address, tuple)  # a Unix socket peer
        return ip in self.trusted

    def accept(self, session: Session[Any]) -> bool:
        if self.is_trusted(session.remote_address):
            self._awaited.add(session)
        elif self.required:
            reason = f"{session.remote_address!r} is not a trusted proxy"
            session.attributes["reject_reason"] = f"ProxyProtocol: {reason}"
            logger.warning("refused %r: %s", session.remote_address, reason)
            return False
        else:
            self._watched.add(session)
        return True

    def before_decode(self, session: Session[Any], buffer: Buffer) -> bool:
        if session in self._awaited:
            return self._read_header(session, buffer)
        if session in self._watched:
            return self._check_untrusted(session, buffer)
        return True

    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event in _FINAL:
            self._awaited.discard(session)
            self._watched.discard(session)

    # -- internals ----------------------------------------------------------------------------
    def _fail(self, session: Session[Any], reason: str, cause: BaseException | None = None) -> bool:
        self._awaited.discard(session)
        self._watched.discard(session)
        error = ProxyProtocolError(reason)
        error.__cause__ = cause
        session.fail_input(error)
        return False

    def _read_header(self, session: Session[Any], buffer: Buffer) -> bool:
        size = len(buffer)
        head = buffer.peek(min(size, 16))
        looks = _could_be_header(head)
        if looks is None:
            return False  # wait for more bytes
        if not looks:
            if self.required:
                return self._fail(
                    session, f"missing PROXY header: the connection starts with {head!r}"
                )
            self._awaited.discard(session)  # optional, absent: the bytes are the app's
            return True
        if head.startswith(SIGNATURE):  # version 2: its length is in bytes 14-15
            if size < 16:
                return False
            need = 16 + int.from_bytes(head[14:16], "big")
            if size < need:
                return False  # (copy the header once, when it is all there)
        else:
            need = MAX_V1
        try:
            header, consumed = self._parse_header(buffer.peek(min(size, need)))
        except DecodeError as exc:
            return self._fail(session, f"malformed PROXY header: {exc}", exc)
        if header is None:
            return False  # a header cut short: wait for the rest
        buffer.consume(consumed)
        self._awaited.discard(session)
        self._use(session, header)
        return True

    @staticmethod
    def _use(session: Session[Any], header: ProxyHeader) -> None:
        session.attributes["proxy_header"] = header
        source = header.source
        if isinstance(source, tuple):
            host = ipaddress.ip_address(source[0])
            session.set_remote_address((str(host), source[1]))
        elif isinstance(source, bytes):
            session.set_remote_address(os.fsdecode(source))

    def _check_untrusted(self, session: Session[Any], buffer: Buffer) -> bool:
        looks = _could_be_header(buffer.peek(min(len(buffer), len(SIGNATURE))))
        if looks is None:
            return False
        self._watched.discard(session)
        if looks:
            return self._fail(
                session,
                f"a PROXY header from {session.remote_address!r}, which is not a trusted proxy",
            )
        return True

"""wirekit demo (runs on loopback only): a length-prefixed string protocol, decoded
incrementally from half and sticky packets, the seed chapter's two examples.

Run it with ``python3 dev.py demo``.
"""

from __future__ import annotations

import construct as cs

from codec import Buffer, Codec, DecodeError

STRING8 = cs.PascalString(cs.Int8ub, "utf8")  # the seed's StringProtocol wire format


def codec_demo() -> None:
    c = Codec(STRING8, max_frame_size=65536)
    print(f"schema framing: {c.framing}")
    frame = c.encode("smart-socket")
    print(f"encode('smart-socket') -> {frame!r} ({len(frame)} bytes)")

    buf = Buffer(frame[:12])
    print(f"half packet: 12 of {len(frame)} bytes buffered -> decode = {c.decode(buf)!r}")

    buf.extend(frame[12:] + frame)
    print(f"sticky packet: {len(buf)} bytes buffered")
    while (msg := c.decode(buf)) is not None:
        print(f"  decoded {msg!r}, {len(buf)} bytes left")

    try:
        c.decode(Buffer(b"\x02\xff\xfe"))
    except DecodeError as exc:
        print(f"malformed bytes -> DecodeError: {exc}")


if __name__ == "__main__":
    codec_demo()

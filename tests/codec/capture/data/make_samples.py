"""Regenerate the small committed sample files in this directory (deterministic).

.venv/bin/python -m tests.codec.capture.data.make_samples
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..pcapgen import Capture, Tcp
from ..protocols import DNS_TCP, dns_answer_a, dns_query, modbus_read

HERE = Path(__file__).parent


def main() -> None:
    # Modbus/TCP, one connection on port 502, a retransmission and a reordered pair
    cap = Capture()
    t = Tcp(cap, ("192.168.0.10", 49152), ("192.168.0.20", 502))
    frames = t.handshake()
    for i in range(4):
        req, resp = modbus_read(i + 1, 40 + i, [i, i * 2, 0xBEEF])
        frames += t.data("c", req) + t.data("s", resp)
    frames[5], frames[6] = frames[6], frames[5]
    frames.insert(8, frames[7])
    for f in frames + t.close():
        cap.add(f)
    cap.write(HERE / "modbus.pcap")

    # DNS over TCP, IPv6 on a VLAN, pcapng
    cap = Capture(vlan=100)
    t = Tcp(cap, ("2001:db8::1", 51000), ("2001:db8::53", 53), isn_c=(1 << 32) - 20)
    frames = t.handshake()
    for i in range(3):
        q = DNS_TCP.build(dns_query(0xA000 + i, [f"www{i}.example.com"]))
        a = DNS_TCP.build(dns_answer_a(0xA000 + i, f"www{i}.example.com", bytes([192, 0, 2, i])))
        frames += t.data("c", q, mss=10) + t.data("s", a)
    for f in frames + t.close():
        cap.add(f)
    cap.write(HERE / "dns_tcp_vlan_ipv6.pcapng", "pcapng")

    # the client's Modbus bytes as xxd and as a plain hex dump
    stream = b"".join(modbus_read(i + 1, 40 + i, [i])[0] for i in range(3))
    (HERE / "modbus_requests.bin").write_bytes(stream)
    xxd = subprocess.run(["xxd"], input=stream, capture_output=True, check=True).stdout
    (HERE / "modbus_requests.xxd").write_bytes(xxd)


if __name__ == "__main__":
    main()

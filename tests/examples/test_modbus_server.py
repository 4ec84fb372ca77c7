"""examples/modbus_server.py against pymodbus's client (an implementation no one here wrote):
reads and writes of holding registers and coils, and the exception responses of the
Application Protocol's section 7 for a bad address, a bad value and an unsupported function.

The server runs as a subprocess, as a user starts it: ``--port 0``, and the first line of
its output says where it listens. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest

from codec import Buffer
from schemas import modbus

from .servers import TIMEOUT, start, stop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "modbus_server.py"
REGISTERS = 50
COILS = 40
T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    proc, host, port = start(EXAMPLE, "--registers", str(REGISTERS), "--coils", str(COILS))
    try:
        yield host, port
    finally:
        assert stop(proc) == 0, "the server did not shut down cleanly on SIGTERM"


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


async def connected(host: str, port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient(host, port=port, timeout=5, retries=0)
    assert await client.connect()
    return client


class UncheckedReadHoldingRegisters(ReadHoldingRegistersRequest):
    """pymodbus refuses to send more than 125 registers' worth; the server must refuse it
    too, with exception 03."""

    MAX_COUNT = 0xFFFF


def test_pymodbus_reads_and_writes_holding_registers(server: tuple[str, int]) -> None:
    async def main() -> None:
        client = await connected(*server)
        try:
            w = await client.write_registers(10, [1, 0xFFFF, 300], device_id=1)
            assert not w.isError()
            assert (w.address, w.count) == (10, 3)
            w = await client.write_register(13, 0xBEEF, device_id=7)
            assert not w.isError()
            assert w.registers == [0xBEEF]
            r = await client.read_holding_registers(9, count=6, device_id=1)
            assert not r.isError()
            assert r.registers == [0, 1, 0xFFFF, 300, 0xBEEF, 0]
            assert r.dev_id == 1
            # input registers are the holding registers (the single-block data model, 4.3)
            i = await client.read_input_registers(11, count=2, device_id=1)
            assert i.registers == [0xFFFF, 300]
            # the whole table, the most one request may read
            r = await client.read_holding_registers(0, count=REGISTERS, device_id=1)
            assert len(r.registers) == REGISTERS
            assert r.registers[10:14] == [1, 0xFFFF, 300, 0xBEEF]
        finally:
            client.close()

    run(main())


def test_pymodbus_reads_and_writes_coils(server: tuple[str, int]) -> None:
    async def main() -> None:
        client = await connected(*server)
        try:
            pattern = [True, False, True, True, False, False, True, False, True, True, True]
            w = await client.write_coils(20, pattern, device_id=1)
            assert not w.isError()
            assert (w.address, w.count) == (20, len(pattern))
            w = await client.write_coil(39, True, device_id=1)
            assert not w.isError()
            r = await client.read_coils(19, count=len(pattern) + 2, device_id=1)
            assert not r.isError()
            # pymodbus pads the states to whole octets
            assert r.bits[: len(pattern) + 2] == [False, *pattern, False]
            d = await client.read_discrete_inputs(36, count=4, device_id=1)
            assert d.bits[:4] == [False, False, False, True]
            w = await client.write_coil(39, False, device_id=1)
            r = await client.read_coils(39, count=1, device_id=1)
            assert r.bits[0] is False
        finally:
            client.close()

    run(main())


def test_pymodbus_gets_exceptions_for_bad_addresses_values_and_functions(
    server: tuple[str, int],
) -> None:
    async def main() -> None:
        client = await connected(*server)
        try:
            # 02 illegal data address: past the end of each table
            r = await client.read_holding_registers(REGISTERS - 2, count=3, device_id=1)
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x83, 2)
            r = await client.write_register(REGISTERS, 1, device_id=1)
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x86, 2)
            r = await client.read_coils(COILS, count=1, device_id=1)
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x81, 2)
            r = await client.write_coils(COILS - 1, [True, True], device_id=1)
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x8F, 2)
            r = await client.write_registers(REGISTERS - 1, [1, 2], device_id=1)
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x90, 2)
            # 03 illegal data value: more registers than one response may carry
            big = UncheckedReadHoldingRegisters(address=0, count=126, dev_id=1)
            r = await client.execute(False, big)
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x83, 3)
            # 01 illegal function: functions the server does not implement
            r = await client.read_device_information(device_id=1)  # 0x2B / 0x0E
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0xAB, 1)
            r = await client.diag_read_bus_message_count(device_id=1)  # 0x08
            assert r.isError()
            assert (r.function_code, r.exception_code) == (0x88, 1)
            # the connection is still good after every exception
            ok = await client.read_holding_registers(0, count=1, device_id=1)
            assert not ok.isError()
        finally:
            client.close()

    run(main())


async def raw_exchange(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` and return the one response ADU that comes back."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        buf = Buffer()
        while (msg := modbus.RESPONSE_CODEC.decode(buf)) is None:
            data = await reader.read(4096)
            assert data, "connection closed before a response"
            buf.extend(data)
        return bytes(modbus.RESPONSE_CODEC.encode(msg))
    finally:
        writer.close()


def test_write_single_coil_takes_only_on_and_off(server: tuple[str, int]) -> None:
    """6.5: the value is 0xFF00 or 0x0000, anything else is exception 03 (pymodbus's client
    only sends the two, so these bytes are written by hand)."""
    request = modbus.REQUEST_CODEC.encode(
        {"transaction_id": 9, "unit_id": 3, "function_code": 5, "data": {"address": 1, "value": 1}}
    )
    response = modbus.RESPONSE.parse(run(raw_exchange(*server, request)))
    assert (response.transaction_id, response.unit_id) == (9, 3)
    assert (response.function_code, response.data.exception_code) == (0x85, 3)


def test_pymodbus_pdu_classes_agree_with_the_schema(server: tuple[str, int]) -> None:
    """pymodbus's own encoding of a request decodes with ``REQUEST`` to the same fields."""
    pdu: ModbusPDU = ReadHoldingRegistersRequest(address=2, count=3, dev_id=0x11)
    data = bytes([pdu.function_code]) + pdu.encode()
    adu = b"\x00\x01\x00\x00" + (len(data) + 1).to_bytes(2, "big") + b"\x11" + data
    msg = modbus.REQUEST.parse(adu)
    assert (msg.unit_id, msg.function_code, msg.data.address, msg.data.quantity) == (
        0x11,
        3,
        2,
        3,
    )
    answer = modbus.RESPONSE.parse(run(raw_exchange(*server, adu)))
    assert answer.data.registers == [0, 0, 0]


def test_bad_bytes_close_that_connection_only(server: tuple[str, int]) -> None:
    """A protocol id other than 0 (Implementation Guide 3.1.3) is not Modbus: the server
    drops that connection and keeps serving the others."""

    async def main() -> None:
        reader, writer = await asyncio.open_connection(*server)
        try:
            writer.write(bytes.fromhex("0001 0007 0006 01 03 0000 0001".replace(" ", "")))
            assert await reader.read() == b""  # closed, nothing answered
        finally:
            writer.close()
        client = await connected(*server)
        try:
            r = await client.read_holding_registers(0, count=1, device_id=1)
            assert not r.isError()
        finally:
            client.close()

    run(main())

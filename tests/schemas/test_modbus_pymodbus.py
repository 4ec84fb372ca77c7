"""A wirekit client (``transport.Client`` with ``schemas.modbus.CLIENT_PROTOCOL``) against
pymodbus's own server, on asyncio and trio: the schema proven by a server no one here wrote.

pymodbus's server runs on its own asyncio loop in a thread, so the client side is free to
run on any anyio backend. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any, cast

import anyio
import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from schemas import modbus
from transport import Client

pytestmark = pytest.mark.anyio

TIMEOUT = 20.0
UNIT = 1
COILS = [True, False, True, True, False, False, False, True, True, False]
INPUTS = [False, True, True, False]
HOLDING = [10, 20, 30, 40, 50, 0xFFFF]
INPUT_REGISTERS = [7, 8]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _device() -> SimDevice:
    """Four separate tables (pymodbus's "non-shared" layout), each starting at address 0."""
    return SimDevice(
        id=UNIT,
        simdata=(
            [SimData(0, values=list(COILS), datatype=DataType.BITS)],
            [SimData(0, values=list(INPUTS), datatype=DataType.BITS)],
            [SimData(0, values=list(HOLDING), datatype=DataType.REGISTERS)],
            [SimData(0, values=list(INPUT_REGISTERS), datatype=DataType.REGISTERS)],
        ),
    )


@pytest.fixture
def pymodbus_server() -> Iterator[tuple[str, int]]:
    """pymodbus's TCP server on a loopback port of its own choosing, in a thread; fresh
    tables for every test."""
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[int] = concurrent.futures.Future()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        server = ModbusTcpServer(_device(), address=("127.0.0.1", 0))
        holder["server"] = server
        await server.serve_forever(background=True)
        # pymodbus types a listener's transport as BaseTransport: it is the loop's Server
        listener = cast(asyncio.Server, server.transport)
        ready.set_result(listener.sockets[0].getsockname()[1])
        await server.serving

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # report a failed start instead of hanging the test
            if not ready.done():
                ready.set_exception(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    port = ready.result(TIMEOUT)
    try:
        yield "127.0.0.1", port
    finally:
        asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(TIMEOUT)
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def request(tid: int, function: int, data: Any) -> dict[str, Any]:
    return {"transaction_id": tid, "unit_id": UNIT, "function_code": function, "data": data}


async def test_wirekit_client_reads_and_writes_pymodbus_server(
    pymodbus_server: tuple[str, int],
) -> None:
    host, port = pymodbus_server
    with anyio.fail_after(TIMEOUT):
        async with Client(modbus.CLIENT_PROTOCOL, host=host, port=port) as session:

            async def ask(tid: int, function: int, data: Any) -> Any:
                await session.send(request(tid, function, data))
                response = await session.receive()
                assert response.transaction_id == tid
                assert response.unit_id == UNIT
                return response

            r = await ask(1, 0x03, {"address": 1, "quantity": 4})
            assert (r.function_code, r.data.byte_count) == (0x03, 8)
            assert r.data.registers == HOLDING[1:5]
            r = await ask(2, 0x04, {"address": 0, "quantity": 2})
            assert r.data.registers == INPUT_REGISTERS
            r = await ask(3, 0x01, {"address": 0, "quantity": len(COILS)})
            assert modbus.unpack_bits(r.data.status, len(COILS)) == COILS
            r = await ask(4, 0x02, {"address": 0, "quantity": len(INPUTS)})
            assert modbus.unpack_bits(r.data.status, len(INPUTS)) == INPUTS

            r = await ask(5, 0x06, {"address": 0, "value": 0xABCD})
            assert (r.function_code, r.data.address, r.data.value) == (0x06, 0, 0xABCD)
            regs = {"address": 2, "quantity": 3, "registers": [1, 2, 3]}
            r = await ask(6, 0x10, regs)
            assert (r.function_code, r.data.address, r.data.quantity) == (0x10, 2, 3)
            r = await ask(7, 0x03, {"address": 0, "quantity": len(HOLDING)})
            assert r.data.registers == [0xABCD, HOLDING[1], 1, 2, 3, HOLDING[5]]

            r = await ask(8, 0x05, {"address": 1, "value": 0xFF00})
            assert (r.function_code, r.data.value) == (0x05, 0xFF00)
            states = [False, False, True]
            coils = {"address": 7, "quantity": 3, "outputs": modbus.pack_bits(states)}
            r = await ask(9, 0x0F, coils)
            assert (r.function_code, r.data.address, r.data.quantity) == (0x0F, 7, 3)
            r = await ask(10, 0x01, {"address": 0, "quantity": len(COILS)})
            expected = [*COILS[:1], True, *COILS[2:7], *states]
            assert modbus.unpack_bits(r.data.status, len(COILS)) == expected


async def test_wirekit_client_decodes_pymodbus_exceptions(
    pymodbus_server: tuple[str, int],
) -> None:
    host, port = pymodbus_server
    with anyio.fail_after(TIMEOUT):
        async with Client(modbus.CLIENT_PROTOCOL, host=host, port=port) as session:
            # an address past the table: 02, on the function code with its high bit set
            await session.send(request(1, 0x03, {"address": 100, "quantity": 2}))
            r = await session.receive()
            assert (r.transaction_id, r.function_code, r.data.exception_code) == (1, 0x83, 2)
            # a user-defined function code (65, Application Protocol 5) pymodbus does not
            # know: an exception response with code 01 (pymodbus answers on function 0x80)
            await session.send(request(2, 0x41, b"\x00\x01"))
            r = await session.receive()
            assert r.transaction_id == 2
            assert r.function_code & 0x80
            assert r.data.exception_code == 1

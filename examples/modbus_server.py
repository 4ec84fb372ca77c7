"""A Modbus/TCP server with holding registers and coils (an example, not a PLC).

    python examples/modbus_server.py --host 127.0.0.1 --port 0 --registers 100 --coils 100

prints ``listening on HOST:PORT`` first, then serves until SIGINT or SIGTERM. It answers
functions 0x01 (read coils), 0x02 (read discrete inputs), 0x03 (read holding registers),
0x04 (read input registers), 0x05 (write single coil), 0x06 (write single register), 0x0F
(write multiple coils) and 0x10 (write multiple registers) of the *MODBUS Application
Protocol Specification V1.1b3*, section 6, checking each request in the order of that
section's state diagrams: an unsupported function is exception 01 (illegal function), a
quantity out of its range or a byte count that does not match it exception 03 (illegal
data value), addresses past the end of the table exception 02 (illegal data address)
(section 7). Discrete inputs and input registers are the coils and holding registers
themselves, the single-block data model of section 4.3. Every register and coil starts
at 0; nothing is kept between runs.

The wire format is :mod:`schemas.modbus`: requests are decoded with ``REQUEST``, responses
encoded with ``RESPONSE`` (``SERVER_PROTOCOL`` pairs the two for ``transport.Server``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import anyio

from schemas.modbus import EXCEPTION_CODES, SERVER_PROTOCOL, pack_bits, unpack_bits
from transport import Processor, Server, Session

ILLEGAL_FUNCTION = EXCEPTION_CODES["ILLEGAL_FUNCTION"]
ILLEGAL_DATA_ADDRESS = EXCEPTION_CODES["ILLEGAL_DATA_ADDRESS"]
ILLEGAL_DATA_VALUE = EXCEPTION_CODES["ILLEGAL_DATA_VALUE"]

#: the largest quantity each function accepts (Application Protocol 6.1-6.4, 6.11, 6.12)
MAX_READ_BITS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_COILS = 1968
MAX_WRITE_REGISTERS = 123

#: write single coil: the only two values a request may carry (6.5)
COIL_ON = 0xFF00
COIL_OFF = 0x0000


class ModbusError(Exception):
    """A request the server answers with an exception response (section 7)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class DataModel:
    """The holding registers and coils, addressed from 0."""

    def __init__(self, registers: int, coils: int) -> None:
        self.registers = [0] * registers
        self.coils = [False] * coils

    @staticmethod
    def _check(table: list[Any], address: int, quantity: int, most: int) -> None:
        if not 1 <= quantity <= most:
            raise ModbusError(ILLEGAL_DATA_VALUE)
        if address + quantity > len(table):
            raise ModbusError(ILLEGAL_DATA_ADDRESS)

    def execute(self, function: int, data: Any) -> Any:
        """The response data for one request's data (``ModbusError`` for an exception)."""
        if function in (0x01, 0x02):
            self._check(self.coils, data.address, data.quantity, MAX_READ_BITS)
            bits = self.coils[data.address : data.address + data.quantity]
            return {"status": pack_bits(bits)}
        if function in (0x03, 0x04):
            self._check(self.registers, data.address, data.quantity, MAX_READ_REGISTERS)
            return {"registers": self.registers[data.address : data.address + data.quantity]}
        if function == 0x05:
            if data.value not in (COIL_ON, COIL_OFF):
                raise ModbusError(ILLEGAL_DATA_VALUE)
            self._check(self.coils, data.address, 1, 1)
            self.coils[data.address] = data.value == COIL_ON
            return data
        if function == 0x06:
            self._check(self.registers, data.address, 1, 1)
            self.registers[data.address] = data.value
            return data
        if function == 0x0F:
            if len(data.outputs) != (data.quantity + 7) // 8:
                raise ModbusError(ILLEGAL_DATA_VALUE)
            self._check(self.coils, data.address, data.quantity, MAX_WRITE_COILS)
            bits = unpack_bits(data.outputs, data.quantity)
            self.coils[data.address : data.address + data.quantity] = bits
            return {"address": data.address, "quantity": data.quantity}
        if function == 0x10:
            if len(data.registers) != data.quantity or data.byte_count != 2 * data.quantity:
                raise ModbusError(ILLEGAL_DATA_VALUE)
            self._check(self.registers, data.address, data.quantity, MAX_WRITE_REGISTERS)
            self.registers[data.address : data.address + data.quantity] = data.registers
            return {"address": data.address, "quantity": data.quantity}
        raise ModbusError(ILLEGAL_FUNCTION)


class ModbusProcessor(Processor[Any]):
    """Answers each request ADU with its response ADU: same transaction and unit id."""

    def __init__(self, model: DataModel) -> None:
        self.model = model

    async def process(self, session: Session[Any], msg: Any) -> None:
        function = msg.function_code
        try:
            data = self.model.execute(function, msg.data)
        except ModbusError as exc:
            function |= 0x80
            data = {"exception_code": exc.code}
        await session.send(
            {
                "transaction_id": msg.transaction_id,
                "unit_id": msg.unit_id,
                "function_code": function,
                "data": data,
            }
        )


async def serve(host: str, port: int, registers: int, coils: int) -> None:
    model = DataModel(registers, coils)
    async with Server(SERVER_PROTOCOL, ModbusProcessor(model), host=host, port=port) as server:
        print(f"listening on {host}:{server.port}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break  # leaving the block shuts down gracefully


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=502)
    p.add_argument("--registers", type=int, default=100, help="holding registers (0..N-1)")
    p.add_argument("--coils", type=int, default=100, help="coils (0..N-1)")
    args = p.parse_args(argv)
    if not 0 <= args.registers <= 0x10000 or not 0 <= args.coils <= 0x10000:
        p.error("--registers and --coils take 0 to 65536")
    anyio.run(serve, args.host, args.port, args.registers, args.coils)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ready-made wire formats written with construct, one module per format, each citing its
specification: :mod:`schemas.basic` (length-prefixed strings and bytes, lines, the
smart-socket book's string and integer protocols), :mod:`schemas.modbus` (Modbus/TCP),
:mod:`schemas.dns` (DNS over UDP and TCP), :mod:`schemas.mqtt` (MQTT 3.1.1 control
packets) and :mod:`schemas.mqtt5` (MQTT 5.0 control packets).

Use one with ``codec.Codec(schemas.modbus.ADU)`` or ``wirekit parse schemas.dns:TCP FILE``.
"""

from __future__ import annotations

__all__: list[str] = []

"""wirekit transport: servers, clients and sessions on anyio (asyncio and trio)."""

from __future__ import annotations

__all__: list[str] = []

"""The group chat example with several clients."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Client, Server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from im_chat import LINE, IMProcessor

pytestmark = pytest.mark.anyio
LOCAL = "127.0.0.1"


async def test_group_chat(engine: dict[str, Any]) -> None:
    codec = Codec(LINE, max_frame_size=4096)
    chat = IMProcessor()
    with anyio.fail_after(20):
        async with Server(codec, chat, host=LOCAL, port=0, **engine) as server:
            port = server.port
            async with (
                Client(codec, host=LOCAL, port=port, **engine) as alice,
                Client(codec, host=LOCAL, port=port, **engine) as bob,
            ):
                await alice.send("alice")
                assert await alice.receive() == "welcome alice (1 online)"
                await bob.send("bob")
                assert await bob.receive() == "welcome bob (2 online)"
                assert await alice.receive() == "bob joined"
                async with Client(codec, host=LOCAL, port=port, **engine) as carol:
                    await carol.send("carol")
                    assert await carol.receive() == "welcome carol (3 online)"
                    assert await alice.receive() == "carol joined"
                    assert await bob.receive() == "carol joined"
                    for i in range(20):  # ordered, to everybody but the sender
                        await alice.send(f"hi {i}")
                    for member in (bob, carol):
                        assert [await member.receive() for _ in range(20)] == [
                            f"alice: hi {i}" for i in range(20)
                        ]
                    await carol.send("bye")
                    assert await alice.receive() == "carol: bye"
                    assert await bob.receive() == "carol: bye"
                assert await alice.receive() == "carol left"
                assert await bob.receive() == "carol left"
                assert len(chat.members) == 2

"""docs/schemas.md, the MQTT section: every Python block runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "schemas.md"


def test_mqtt_section_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## MQTT 3.1.1 and 5.0", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    namespace: dict[str, object] = {"__name__": "mqtt_docs"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[mqtt {i}]", "exec"), namespace)

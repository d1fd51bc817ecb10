"""The output every benchmark ends with: its Markdown table printed, then written where asked."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence


def write_report(markdown: str, records: Sequence[Any], markdown_path: Path | None, json_path: Path | None) -> None:
    """Print ``markdown``; write it and the dataclass ``records`` (one JSON object each) if paths are given."""
    print(markdown)
    if markdown_path:
        markdown_path.write_text(markdown + "\n")
    if json_path:
        json_path.write_text(json.dumps([asdict(r) for r in records], indent=1))

"""bench/train_speed.py: every precision setting timed for both loops, ratios against fp32."""
from __future__ import annotations

import json
from pathlib import Path

from bench.train_speed import SETTINGS, main


def test_train_speed_times_every_setting(tmp_path: Path, capsys) -> None:
    out = tmp_path / "speed.json"
    assert main(["--config", "tiny", "--threads", "1", "--rounds", "1", "--json", str(out),
                 "--markdown", str(tmp_path / "speed.md")]) == 0
    records = json.loads(out.read_text())
    assert [(r["loop"], r["precision"], r["channels_last"]) for r in records] == \
        [(loop, p, cl) for loop in ("meta-learning", "fine-tuning") for p, cl in SETTINGS]
    assert all(r["ms_per_step"] > 0 for r in records)
    for r in records:
        if (r["precision"], r["channels_last"]) == ("fp32", False):
            assert r["speed_vs_fp32"] == 1.0
    assert "| meta-learning | bf16, channels-last |" in capsys.readouterr().out

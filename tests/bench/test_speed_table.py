"""bench/speed.py's table: ratios against PyTorch eager on the same device, none for sweep rows."""
from __future__ import annotations

from bench.speed import Record, table


def _rows(text: str) -> dict[tuple[str, str, str, str], list[str]]:
    out = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[(cells[1], cells[2], cells[3], cells[4])] = cells  # model, device, runtime, variant
    return out


def test_ratios_are_against_eager_on_the_same_device() -> None:
    gpu = "NVIDIA H200"
    records = [Record("paper", "pytorch", "fp32", 1, 2, 100.0),
               Record("paper", "onnxruntime", "fp32", 1, 2, 40.0),
               Record("paper", "pytorch", "fp32", 1, 0, 8.0, device=gpu),
               Record("paper", "pytorch", "fp16 autocast", 1, 0, 4.0, device=gpu),
               Record("paper", "onnxruntime", "fp16", 1, 0, 2.0, device=gpu),
               Record("lite", "onnxruntime", "fp32", 1, 2, 30.0, sweep="resolution")]
    rows = _rows(table(records))
    assert len(rows) == len(records)
    assert rows[("paper", "cpu", "onnxruntime", "fp32")][-1] == "2.50x"
    assert rows[("paper", gpu, "pytorch", "fp16 autocast")][-1] == "2.00x"
    assert rows[("paper", gpu, "onnxruntime", "fp16")][-1] == "4.00x"  # against GPU eager, not CPU eager
    assert rows[("paper", gpu, "onnxruntime", "fp16")][8] == ""  # no CPU thread count for a GPU row
    assert rows[("lite", "cpu", "onnxruntime", "fp32")][-1] == ""  # a sweep row: timed apart, no ratio

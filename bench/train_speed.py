"""Training speed settings side by side: ms per meta-learning step and per fine-tuning step.

    python bench/train_speed.py [--config training/configs/lite_cpu_ema.json] [--threads 2]
                                [--rounds 5] [--json FILE] [--markdown FILE]

Each setting (``train.precision`` x ``train.channels_last``, :mod:`training.precision`) gets its own
models built from the config (random weights: cost does not depend on them) and runs the same
inputs: a meta-learning episode of K shots + one target (:class:`training.meta_learning.MetaLearner`),
and few-shot fine-tuning (:func:`training.finetune.finetune`, batch of 4 of 8 shots). Meta-learning
steps are timed round-robin (:mod:`bench.timing`); fine-tuning runs are interleaved the same way,
each timed per step after its first. Prints the median ms per step and the speed against fp32 with
the default layout, measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import write_report  # noqa: E402
from bench.timing import round_robin  # noqa: E402
from export.data import synthetic  # noqa: E402
from training.checkpoint import build_models  # noqa: E402
from training.config import Config, load_config  # noqa: E402
from training.finetune import FinetuneConfig, finetune  # noqa: E402
from training.meta_learning import MetaLearner  # noqa: E402

SETTINGS: tuple[tuple[str, bool], ...] = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))


@dataclass
class Record:
    loop: str  # "meta-learning" | "fine-tuning"
    model: str
    precision: str
    channels_last: bool
    threads: int
    ms_per_step: float
    speed_vs_fp32: float


def _label(precision: str, channels_last: bool) -> str:
    return f"{precision}, {'channels-last' if channels_last else 'contiguous'}"


def _episode(config: Config, seed: int = 0) -> dict[str, torch.Tensor]:
    k, r = config.train.k_shots, config.net.resolution
    s = synthetic(r, k + 1, seed)
    images, lms = torch.from_numpy(s.images), torch.from_numpy(s.landmarks)
    return {"shots_image": images[:k][None], "shots_landmarks": lms[:k][None], "target_image": images[k:],
            "target_landmarks": lms[k:], "video_index": torch.zeros(1, dtype=torch.long)}


def time_meta_learning(config: Config, rounds: int) -> dict[tuple[str, bool], float]:
    batch = _episode(config)
    runs = {}
    for precision, channels_last in SETTINGS:
        cfg = replace(config, train=replace(config.train, precision=precision, channels_last=channels_last))
        torch.manual_seed(0)
        learner = MetaLearner(build_models(cfg, 1), cfg, torch.device("cpu"))
        runs[(precision, channels_last)] = lambda feed, learner=learner: learner.step(feed)
    return round_robin(runs, [batch], rounds, warmup=1)


def time_finetuning(config: Config, rounds: int, steps: int = 4) -> dict[tuple[str, bool], float]:
    torch.manual_seed(0)
    models = build_models(config, 1)
    s = synthetic(config.net.resolution, 8, 1)
    shots, lms = torch.from_numpy(s.images), torch.from_numpy(s.landmarks)
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in SETTINGS}
    for i in range(rounds):
        print(f"  fine-tuning round {i + 1}/{rounds}", file=sys.stderr)
        for precision, channels_last in SETTINGS:
            stamps: list[float] = []
            # With the discriminator (the paper's losses): the recipe docs/bench/train_speed.md timed.
            cfg = FinetuneConfig(steps=steps + 1, precision=precision, channels_last=channels_last,
                                 use_discriminator=True)
            finetune(models, shots, lms, cfg, on_step=lambda *_: stamps.append(time.perf_counter()))
            times[(precision, channels_last)] += [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]
    return {key: statistics.median(ts) for key, ts in times.items()}


def _records(loop: str, config: Config, threads: int, ms: dict[tuple[str, bool], float]) -> list[Record]:
    base = ms[("fp32", False)]
    return [Record(loop, config.size, p, cl, threads, round(ms[(p, cl)], 1), round(base / ms[(p, cl)], 2))
            for p, cl in SETTINGS]


def _markdown(records: list[Record], config_name: str) -> str:
    threads = records[0].threads
    lines = [f"Training step time, config `{config_name}`, {threads} CPU thread(s), round-robin medians "
             "(speed: against fp32, contiguous, in the same run)", "",
             "| loop | setting | ms/step | speed |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {r.loop} | {_label(r.precision, r.channels_last)} | {r.ms_per_step:.0f} | {r.speed_vs_fp32:.2f}x |"
              for r in records]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "training" / "configs" / "lite_cpu_ema.json"),
                   help="preset or JSON config (its architecture and K; precision settings are varied)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--skip-finetune", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    records = _records("meta-learning", config, args.threads, time_meta_learning(config, args.rounds))
    if not args.skip_finetune:
        records += _records("fine-tuning", config, args.threads, time_finetuning(config, args.rounds))
    write_report(_markdown(records, Path(args.config).name), records, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

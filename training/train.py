"""Meta-learning: ``python -m training.train --config lite|paper|FILE --data DIR [DIR ...] --out DIR``.

A run directory holds ``options.json``, ``metrics.csv``, ``samples/*.png``, ``loss_curve.png``,
``checkpoint.safetensors`` and ``optimizer.pt``. ``--resume`` continues a run exactly where its
checkpoint left it (episodes depend only on seed and step). Several processes: launch with
``torchrun --nproc_per_node N -m training.train ...`` (DistributedDataParallel; gloo on CPU).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from .augment import Augmentation
from .checkpoint import (CheckpointState, build_models, load_checkpoint, load_embedder, load_optimizers,
                         save_checkpoint)
from .config import Config, load_config
from .dataset import EpisodeDataset, read_name_list
from .errors import DatasetError, TrainingError
from .meta_learning import MetaLearner
from .prefetch import BatchPrefetcher
from .run_dir import MetricsLog, plot_losses, write_grid, write_options
from .warp_learning import WarpLearner

log = logging.getLogger("talkinghead.train")
CHECKPOINT = "checkpoint.safetensors"


@dataclass
class RunOptions:
    """Everything the command line says, besides the config."""

    data: list[Path]
    out: Path
    resume: bool = False
    init: Path | None = None  # start from these weights (the repo's compact checkpoint); step count continues
    init_embedder: Path | None = None  # a fresh run takes only the embedder of this checkpoint (warp family: lite's)
    steps: int | None = None  # total steps to reach (overrides config.train.steps)
    skip_short: bool = False
    holdout: tuple[str, ...] = field(default_factory=tuple)
    device: str = "auto"
    compact: Path | None = None  # also write an fp16 weights-only copy here at each checkpoint
    quiet: bool = False
    max_minutes: float | None = None  # stop (with a checkpoint) after this long: time-boxed sessions


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank() if world > 1 else 0), world


def train(config: Config, opts: RunOptions) -> Path:
    """Run (or resume) meta-learning; returns the checkpoint path."""
    rank, world = _distributed()
    t = config.train
    torch.manual_seed(t.seed)
    ckpt_path = opts.out / CHECKPOINT
    if ckpt_path.exists() and not opts.resume:
        raise TrainingError(f"{opts.out} already holds a run; pass --resume to continue it or choose another --out")
    if opts.resume and not ckpt_path.exists():
        raise TrainingError(f"--resume: no checkpoint in {opts.out}")
    dataset = EpisodeDataset(opts.data, t.k_shots, config.net.resolution,
                             augmentation=Augmentation(t.flip_prob, t.color_jitter),
                             skip_short=opts.skip_short, holdout=opts.holdout, reference_scale=t.reference_scale,
                             mouth_open_targets=t.mouth_open_targets)
    if opts.resume:
        models, state = load_checkpoint(ckpt_path, config, for_training=True)
    elif opts.init is not None:  # weights (e.g. the repo's compact checkpoint), fresh optimizer; steps count on
        models, state = load_checkpoint(opts.init, config, for_training=True)
    else:
        models, state = build_models(config, len(dataset)), CheckpointState()
        if opts.init_embedder is not None:
            state.extra["embedder_from"] = {"path": str(opts.init_embedder),
                                            "step": load_embedder(opts.init_embedder, models)}
    if models.discriminator is not None and state.videos != dataset.names:
        if opts.resume and state.videos:
            raise TrainingError("the dataset's videos differ from the checkpoint's (W_i are per video); "
                                f"checkpoint has {len(state.videos)}, data has {len(dataset)}")
        remap_video_vectors(models.discriminator, state.videos, dataset.names)
    state.videos, state.data = dataset.names, {"roots": [str(p) for p in opts.data], **dataset.summary()}

    device = _device(opts.device)
    wrap = None
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        wrap = lambda m: torch.nn.parallel.DistributedDataParallel(m, device_ids=ids, find_unused_parameters=True)  # noqa: E731
    if config.net.family == "warp":
        learner = WarpLearner(models, config, device, wrap, start_step=state.step)
    else:
        learner = MetaLearner(models, config, device, wrap)
    if opts.resume:
        load_optimizers(ckpt_path, learner.optimizers)

    total = opts.steps if opts.steps is not None else t.steps
    main = rank == 0
    if main:
        (opts.out / "samples").mkdir(parents=True, exist_ok=True)
        write_options(opts.out, {"config": config.to_dict(), "data": [str(p) for p in opts.data],
                                 "holdout": list(opts.holdout), "world_size": world, "device": str(device),
                                 "threads": torch.get_num_threads()})
    metrics = MetricsLog(opts.out, state.step if opts.resume else None) if main else None
    start, t0 = state.step, time.time()
    seconds_before = float(state.extra.get("train_seconds", 0.0))
    batches = BatchPrefetcher(lambda s: _batch(dataset, t.seed, s, t.batch_size, rank), range(start, total),
                              t.num_workers)
    bar = tqdm(batches, initial=start, total=total, disable=not main or opts.quiet, desc="meta-learning", unit="step")
    with batches, _stop_requests() as stop:
        for step, batch in bar:
            result = learner.step(batch)
            state.step = step + 1
            stop_now = _should_stop(opts.max_minutes, t0, stop.is_set(), world, device)
            if main:
                if state.step % t.log_every == 0 or state.step == total:
                    metrics.log({"step": state.step, "seconds": round(time.time() - t0, 2), **result.losses})
                    bar.set_postfix(l1=f"{result.losses['l1']:.3f}", loss=f"{result.losses['loss_g']:.2f}")
                if state.step % t.sample_every == 0 or state.step == total:
                    write_grid(opts.out / "samples" / f"step_{state.step:07d}.png",
                               [result.shot, result.real, result.fake])
                if state.step % t.checkpoint_every == 0 or state.step == total or stop_now:
                    state.extra["train_seconds"] = round(seconds_before + time.time() - t0, 1)
                    _save(models, state, learner, opts)
            if stop_now:
                if main:
                    why = "stop requested (SIGINT/SIGTERM)" if stop.is_set() else f"--max-minutes {opts.max_minutes:g} reached"
                    log.warning("%s at step %d; checkpoint written (continue with --resume)", why, state.step)
                break
    if main and state.step == start:  # nothing to do: still leave a checkpoint
        _save(models, state, learner, opts)
    if main and (opts.out / "metrics.csv").is_file():
        plot_losses(opts.out / "metrics.csv", opts.out / "loss_curve.png")
    if world > 1:
        dist.barrier()
    return ckpt_path


@contextlib.contextmanager
def _stop_requests():
    """Ctrl-C or SIGTERM during training: finish the current step, write a checkpoint, stop.

    Yields an event that is set once a signal arrives; a second signal interrupts at once. Outside
    the main thread (where handlers cannot be installed) the event is never set.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("signal %d: stopping after this step with a checkpoint (again to interrupt at once)", signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _should_stop(max_minutes: float | None, t0: float, requested: bool, world: int, device: torch.device) -> bool:
    """Whether --max-minutes has passed or a stop was requested; with several processes, rank 0 decides for all."""
    stop = requested or (max_minutes is not None and time.time() - t0 > 60 * max_minutes)
    if world > 1:
        flag = torch.tensor([int(stop)], device=device)
        dist.broadcast(flag, 0)
        stop = bool(flag.item())
    return stop


def remap_video_vectors(discriminator: torch.nn.Module, old: list[str], new: list[str]) -> None:
    """--init on other data: keep W_i of the videos both lists name, start the others afresh."""
    index = {name: i for i, name in enumerate(old)}
    with torch.no_grad():
        W = discriminator.W
        fresh = torch.randn(len(new), W.shape[1], dtype=W.dtype) * 0.02
        for j, name in enumerate(new):
            if name in index:
                fresh[j] = W[index[name]]
        discriminator.W = torch.nn.Parameter(fresh)
    kept = sum(name in index for name in new)
    log.warning("--init: the data's videos differ from the checkpoint's: W_i kept for %d, new for %d, %d dropped",
                kept, len(new) - kept, len(old) - kept)


def _batch(dataset: EpisodeDataset, seed: int, step: int, batch_size: int, rank: int, attempts: int = 3) -> dict:
    """A step's episodes; an unreadable frame is logged and the step resampled (deterministically)."""
    for attempt in range(attempts):
        try:
            return dataset.batch(seed, step, batch_size, rank + 1000 * attempt)
        except DatasetError as exc:
            if attempt == attempts - 1:
                raise
            log.warning("step %d: %s; resampling", step, exc)
    raise AssertionError("unreachable")


def _save(models, state, learner: MetaLearner, opts: RunOptions) -> None:
    save_checkpoint(opts.out / CHECKPOINT, models, state, optimizers=learner.optimizers)
    if opts.compact is not None:
        save_checkpoint(opts.compact, models, state, half=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="lite", help="preset (lite, paper, tiny) or a JSON file (default: lite)")
    p.add_argument("--data", nargs="+", type=Path, required=True, help="prepared dataset folder(s)")
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights and step count (new optimizer state; "
                                             "e.g. checkpoints/lite/checkpoint.safetensors)")
    p.add_argument("--init-embedder", type=Path, help="a fresh run takes the embedder of this checkpoint "
                                                      "(the warp family: checkpoints/lite/checkpoint.safetensors)")
    p.add_argument("--steps", type=int, help="total steps to reach (default: the config's)")
    p.add_argument("--seed", type=int, help="override config.train.seed")
    p.add_argument("--k-shots", type=int, help="override config.train.k_shots")
    p.add_argument("--holdout", nargs="*", default=[], help="video names to leave out (evaluation)")
    p.add_argument("--holdout-file", type=Path, nargs="+", default=[],
                   help="file(s) with one held-out video name per line (e.g. training/holdout.txt "
                        "training/validation.txt)")
    p.add_argument("--skip-short", action="store_true", help="leave out videos with fewer than K+1 frames")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--compact", type=Path, help="also write an fp16 weights-only checkpoint here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this many minutes of training")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = load_config(args.config)
        if args.seed is not None:
            config.train.seed = args.seed
        if args.k_shots is not None:
            config.train.k_shots = args.k_shots
        config.validate()
        if args.threads:
            torch.set_num_threads(args.threads)
        holdout = list(args.holdout)
        for name_file in args.holdout_file:
            holdout += read_name_list(name_file)
        opts = RunOptions(data=args.data, out=args.out, resume=args.resume, init=args.init,
                          init_embedder=args.init_embedder, steps=args.steps,
                          skip_short=args.skip_short, holdout=tuple(holdout), device=args.device,
                          compact=args.compact, quiet=args.quiet,
                          max_minutes=args.max_minutes)
        path = train(config, opts)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if dist.is_initialized():
        # Every rank has passed train()'s final barrier. Without this, Gloo's worker threads are
        # still alive at interpreter shutdown and a rank can abort there ("terminate called without
        # an active exception", SIGABRT) after a successful run. Only on success: destroying the
        # group while another rank still waits in a collective would hang.
        dist.destroy_process_group()
    print(f"checkpoint: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ONNX Runtime settings for the per-frame generator, measured side by side in one run.

    python bench/ort_settings.py [--package DIR] [--threads 2] [--rounds 5] [--frames 20]
                                 [--also GRAPH ...] [--json FILE] [--markdown FILE]

Each setting is a variation of the SDK's default session (``talkinghead.sessions.SessionConfig``:
graph optimisation "all", the CPU memory arena on, the thread count given) on the package's
generator (the bundled default model unless ``--package``), batch 1, fed a talking performance of
the package's default avatar (``talkinghead.performance``): real weights, real-shaped inputs, no
data from outside the package. Settings are timed round-robin (``--rounds`` rounds of ``--frames``
frames each, after a warm-up) so that a slow spell of this shared machine hits all of them alike;
the table gives the median ms per frame over all frames, the ratio to the default, and the time to
create the session. Only ratios within one run compare.

Settings: graph optimisation level (basic / extended / all — "all" adds ORT's NCHWc layout
transformer on CPU), intra-op threads, memory arena off, thread spinning off, denormals as zero,
IO binding with pre-bound inputs and a pre-allocated output, a model file optimised once and saved
(loaded with optimisation off), and the package's int8 variant. ``--also GRAPH`` adds other
generator files with the default settings, e.g. the same checkpoint exported with
``--prune-attention 0``; their output must agree with the package's within 1e-3 like the settings'.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import write_report  # noqa: E402
from bench.timing import round_robin  # noqa: E402
from talkinghead.avatar import Avatar  # noqa: E402
from talkinghead.package import ModelPackage  # noqa: E402
from talkinghead.performance import generate_performance  # noqa: E402
from talkinghead.sessions import SessionConfig  # noqa: E402

DEFAULT_PACKAGE = REPO / "sdk" / "talkinghead" / "models" / "default"


@dataclass
class Setting:
    """One way of running the generator: session options plus how a frame is run."""

    name: str
    config: SessionConfig
    entries: dict[str, str] = field(default_factory=dict)  # add_session_config_entry
    io_binding: bool = False
    file: str = "generator"  # "generator", a variant name, or "optimised"
    path: Path | None = None  # another generator file (``--also``), checked against the default's output


@dataclass
class Result:
    setting: str
    ms_per_frame: float
    vs_default: float
    create_ms: float
    threads: int
    frames: int


def settings(threads: int, variants: list[str]) -> list[Setting]:
    base = SessionConfig(intra_op_threads=threads)

    def cfg(**kw) -> SessionConfig:
        return SessionConfig(**{**asdict(base), **kw})

    out = [
        Setting("default (all, arena on)", base),
        Setting("optimisation basic", cfg(graph_optimization="basic")),
        Setting("optimisation extended (no NCHWc)", cfg(graph_optimization="extended")),
        Setting("1 intra-op thread", cfg(intra_op_threads=1)),
        Setting("memory arena off", cfg(enable_mem_arena=False)),
        Setting("spinning off", cfg(allow_spinning=False)),
        Setting("denormals as zero", base, {"session.set_denormal_as_zero": "1"}),
        Setting("IO binding, output pre-allocated", base, io_binding=True),
        Setting("saved optimised model (extended), loaded at all", base, file="optimised"),
    ]
    out += [Setting(f"variant {v}", base, file=v) for v in variants]
    return out


def performance_feeds(package: ModelPackage, frames: int) -> list[dict[str, np.ndarray]]:
    """Batch-1 generator inputs: the package's default avatar talking (no outside data)."""
    avatar_path = package.default_avatar_path
    if avatar_path is None:
        raise SystemExit(f"{package.folder}: no default avatar to drive (manifest default_avatar)")
    avatar = Avatar.load(avatar_path)
    motion = generate_performance(avatar.landmarks, seconds=frames / 25.0, fps=25.0).astype(np.float32)
    identity = avatar.identity.reshape(1, -1).astype(np.float32)
    return [{"landmarks": lm[None], "identity": identity} for lm in motion]


def save_optimised(src: Path, dst: Path, threads: int) -> None:
    """Optimise ``src`` once at the portable "extended" level and save it to ``dst``.

    ORT warns that models saved at "all" carry hardware-specific layouts (NCHWc); "extended" is the
    level it recommends for files that travel.
    """
    so = SessionConfig(intra_op_threads=threads, graph_optimization="extended").session_options()
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])


class Runner:
    """A session for one setting and a ``run(feed)`` that does what the setting says."""

    def __init__(self, setting: Setting, path: Path) -> None:
        so = setting.config.validate().session_options()
        for k, v in setting.entries.items():
            so.add_session_config_entry(k, v)
        t0 = time.perf_counter()
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.create_ms = (time.perf_counter() - t0) * 1000
        self.output = self.session.get_outputs()[0].name
        self.run: Callable[[dict[str, np.ndarray]], np.ndarray] = self._plain
        if setting.io_binding:
            self.binding = self.session.io_binding()
            self.out_buf: np.ndarray | None = None
            self.run = self._bound

    def _plain(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output], feed)[0]

    def _bound(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self.out_buf is None:  # one output buffer, shaped by a first plain run, reused after
            self.out_buf = np.empty_like(self._plain(feed))
            self.binding.bind_output(self.output, "cpu", 0, np.float32, list(self.out_buf.shape),
                                     self.out_buf.ctypes.data)
        for name, value in feed.items():
            self.binding.bind_cpu_input(name, value)
        self.session.run_with_iobinding(self.binding)
        return self.out_buf


def measure(package: ModelPackage, threads: int, rounds: int, frames: int,
            also: tuple[Path, ...] = ()) -> list[Result]:
    variants = [v for v in package.variant_names("generator") if v == "int8"]
    feeds = performance_feeds(package, frames)
    with tempfile.TemporaryDirectory(prefix="talkinghead-ort-") as tmp:
        optimised = Path(tmp) / "generator.optimised.onnx"
        save_optimised(package.generator_path, optimised, threads)
        runners: list[tuple[Setting, Runner]] = []
        extra = [Setting(f"graph {p}", SessionConfig(intra_op_threads=threads), path=p) for p in also]
        for s in settings(threads, variants) + extra:
            path = s.path or {"optimised": optimised, "generator": package.generator_path}.get(s.file) \
                or package.graph_path("generator", s.file)
            print(f"  session: {s.name}", file=sys.stderr)
            runners.append((s, Runner(s, path)))
        reference = runners[0][1].run(feeds[0]).copy()
        for s, r in runners[1:]:
            if s.file in ("generator", "optimised") or s.path is not None:
                diff = float(np.max(np.abs(r.run(feeds[0]) - reference)))
                if diff > 1e-3:
                    raise SystemExit(f"setting {s.name!r} changes the output by {diff:.3g} max abs")
        medians = round_robin({s.name: r.run for s, r in runners}, feeds, rounds)
    base = medians[runners[0][0].name]
    return [Result(s.name, round(medians[s.name], 3), round(base / medians[s.name], 3), round(r.create_ms, 1),
                   threads, rounds * len(feeds)) for s, r in runners]


def table(results: list[Result]) -> str:
    lines = ["| setting | ms/frame | speed vs default | session create ms |", "| --- | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.setting} | {r.ms_per_frame:.2f} | {r.vs_default:.2f}x | {r.create_ms:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=20, help="frames per setting per round")
    p.add_argument("--also", type=Path, nargs="+", default=[], metavar="GRAPH",
                   help="other generator .onnx files to time with the default settings")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    missing = [str(g) for g in args.also if not g.is_file()]
    if missing:
        p.error(f"--also: no such file(s): {', '.join(missing)}")
    package = ModelPackage.load(args.package)
    print(f"{package.name} generator, batch 1, {args.threads} threads, onnxruntime {ort.__version__}",
          file=sys.stderr)
    results = measure(package, args.threads, args.rounds, args.frames, tuple(args.also))
    write_report(table(results), results, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

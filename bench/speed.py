"""Speed benchmark: model size x runtime x batch, measured side by side in one run.

    python bench/speed.py [--sizes lite,paper] [--batches 1,4,16] [--threads 2] [--json FILE]
                          [--markdown FILE] [--plot FILE] [--rounds N] [--cuda auto|on|off]
                          [--gpu-batches 1,4,16,64] [--cpu on|off]
    python bench/speed.py --packages LITE_PKG WARP_PKG [--package-ks 1,8] [--threads 2]

``--packages``: instead, the shipped generator graphs of real model packages (fp32 and their int8
variant) at batch 1, round-robin in one run; a ``warp`` package at each K of ``--package-ks``
(reference shots: its default avatar's, since session 18, and a target near that face); the
ratio column is to the first package's fp32 row.

For each model size (random weights: cost does not depend on weights), the generator runs on
PyTorch eager, ONNX Runtime fp32, fp32 without the self-attention blocks (what the exporter ships
when a trained model does not use them, export/prune.py) and int8 (the exporter's recipe, quantised
from the graph without attention: compare it with that row), timed round-robin (bench.timing),
then the native C++ core — through pybind11 and, with bench/native_speed.c built as
build/native/th_bench, through the C ABI alone — where available; the table gives the median ms per
frame, frames per second and the ratio to PyTorch eager. Where torch sees a CUDA device
(``--cuda auto``, the default), each generator is also timed there (``--gpu-batches``): PyTorch
eager fp32 and fp16 (autocast) and, when onnxruntime-gpu is installed, ONNX Runtime's CUDA provider
with the fp32 graph and the exporter's fp16 variant; rows carry the GPU's name. Then how
cost grows: generator time against resolution and batch, embedder time against K. Warm-up runs
are excluded; the thread count is stated. Numbers are only comparable within one run.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import write_report  # noqa: E402
from bench.timing import round_robin  # noqa: E402
from training.checkpoint import build_models  # noqa: E402
from training.config import PRESETS, Config  # noqa: E402


@dataclass
class Record:
    model: str
    runtime: str
    variant: str
    batch: int
    threads: int
    ms_per_frame: float
    graph: str = "generator"
    resolution: int = 256
    k: int = 0
    sweep: str = ""  # "resolution": timed on its own, after the side-by-side rows (not against eager)
    device: str = "cpu"  # or the GPU's name


def median_ms(fn: Callable[[], object], warmup: int = 2, repeat: int = 7, min_seconds: float = 0.5) -> float:
    """Median wall time of ``fn`` in ms over at least ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_seconds and len(times) < 50):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def inputs(config: Config, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lm = torch.rand(batch, 68, 2, generator=g) * 1.2 - 0.6
    return lm, torch.randn(batch, config.net.embedding_dim, generator=g)


def ort_session(path: Path, threads: int, providers: list[str] | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])


def export_generator(models, folder: Path, calibration_landmarks: np.ndarray,
                     pruned: bool = True, int8: bool = True) -> dict[str, Path]:
    """fp32 and int8 generator graphs of random-weight models, through the project's exporter, all
    with ONNX Runtime's fused instance norm (what the exporter ships when parity allows, as for the
    default model). With ``pruned``, also fp32 without the self-attention blocks (what the exporter
    leaves out of a trained model whose blocks add nothing, :mod:`export.prune`: the default model's
    case); the int8 graph is then quantised from that one, so that it compares with
    "fp32 no attention" as the shipped int8 file compares with the shipped fp32 one."""
    import onnx

    from export.onnx_export import export_module, prepare_modules
    from export.prune import attention_blocks, remove_attention
    from export.quantize import quantize_int8  # the exporter's int8 path (static QDQ)

    out: dict[str, Path] = {}
    lm, ident = torch.zeros(1, 68, 2), torch.zeros(1, models.config.net.embedding_dim)
    mods = prepare_modules(models, "meta", two_stage_norm=False)
    fp32 = export_module(mods.generator, "meta", "generator", (lm, ident))
    onnx.save(fp32, folder / "g32.onnx")
    out["fp32"] = folder / "g32.onnx"
    blocks = list(attention_blocks(mods.generator))
    if pruned and blocks:  # the fp32 graph is saved, so this copy can lose its attention in place
        remove_attention(mods.generator, blocks)
        fp32 = export_module(mods.generator, "meta", "generator", (lm, ident))
        onnx.save(fp32, folder / "g32p.onnx")
        out["fp32 no attention"] = folder / "g32p.onnx"
    if int8:
        rng = np.random.default_rng(0)
        feeds = [{"landmarks": calibration_landmarks[i:i + 1],
                  "identity": rng.standard_normal((1, ident.shape[1])).astype(np.float32)} for i in range(8)]
        onnx.save(quantize_int8(fp32, feeds), folder / "g8.onnx")
        out["int8"] = folder / "g8.onnx"
    return out


def bench_generator(size: str, batches: list[int], threads: int, records: list[Record], rounds: int = 4) -> None:
    torch.set_num_threads(threads)
    config = PRESETS[size]()
    models = build_models(config, 1)
    gen = copy.deepcopy(models.generator).eval()
    with tempfile.TemporaryDirectory() as tmp:
        calib = (np.random.default_rng(1).random((8, 68, 2)).astype(np.float32) * 1.2 - 0.6)
        graphs = export_generator(models, Path(tmp), calib)
        sessions = {name: ort_session(path, threads) for name, path in graphs.items()}
        for b in batches:
            lm, ident = inputs(config, b)
            feed = {"landmarks": lm.numpy(), "identity": ident.numpy()}

            def eager(_feed, lm=lm, ident=ident):
                with torch.no_grad():
                    return gen(lm, ident)

            runs = {("pytorch", "fp32"): eager,
                    **{("onnxruntime", name): (lambda f, s=sess: s.run(None, f)) for name, sess in sessions.items()}}
            # round-robin: a slow spell on the shared machine hits every runtime alike
            medians = round_robin(runs, [feed] * 2, rounds=rounds, warmup=2)
            for (runtime, variant), ms in medians.items():
                records.append(Record(size, runtime, variant, b, threads, ms / b, resolution=config.net.resolution))
            print(f"  {size} batch {b}: done", file=sys.stderr)


def bench_generator_cuda(size: str, batches: list[int], records: list[Record], rounds: int = 4) -> None:
    """The same generator on the GPU: PyTorch eager fp32 and fp16 (autocast), and ONNX Runtime's CUDA
    provider fp32 and fp16 (the exporter's fp16 variant) when onnxruntime-gpu is installed. Every call
    ends with the frame on the host, so both runtimes count the device-to-host copy (ORT also copies
    its small inputs to the device). PyTorch eager is the training module in eval mode, as a
    researcher runs it: spectral norm divides each weight at every call (the ONNX graphs have it
    folded), and its fp32 convolutions may use TF32 (PyTorch's cuDNN default). A batch that fails
    (e.g. out of GPU memory) is reported and skipped; the rows measured so far are kept."""
    import onnxruntime as ort

    from export.quantize import convert_fp16

    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    config = PRESETS[size]()
    models = build_models(config, 1)
    gen = copy.deepcopy(models.generator).eval().to(device)
    ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if not ort_cuda:
        print(f"  {size}: onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu): "
              "PyTorch rows only", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        if ort_cuda:
            import onnx

            # attention kept, like the eager model it is compared with
            fp32 = export_generator(models, Path(tmp), np.zeros((8, 68, 2), np.float32), pruned=False, int8=False)["fp32"]
            onnx.save(convert_fp16(onnx.load(str(fp32))), Path(tmp) / "g16.onnx")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
            sessions = {"fp32": ort_session(fp32, 1, providers), "fp16": ort_session(Path(tmp) / "g16.onnx", 1, providers)}
            if any(sess.get_providers()[0] != "CUDAExecutionProvider" for sess in sessions.values()):
                print(f"  {size}: onnxruntime fell back to the CPU (CUDA libraries missing?): PyTorch rows only",
                      file=sys.stderr)
                sessions = {}
        for b in batches:
            lm, ident = (t.to(device) for t in inputs(config, b))
            feed = {"landmarks": lm.cpu().numpy(), "identity": ident.cpu().numpy()}

            def eager(_feed, lm=lm, ident=ident, half=False):
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
                    return gen(lm, ident).float().cpu()  # the frame on the host, like ORT's output

            runs = {("pytorch", "fp32"): eager, ("pytorch", "fp16 autocast"): lambda f, e=eager: e(f, half=True),
                    **{("onnxruntime", v): (lambda f, s=sess: s.run(None, f)) for v, sess in sessions.items()}}
            try:
                medians = round_robin(runs, [feed] * 4, rounds=rounds, warmup=3)
            except (RuntimeError, MemoryError) as exc:  # CUDA out of memory, an ORT CUDA failure
                print(f"  {size} batch {b} on {name}: failed, skipped ({exc})", file=sys.stderr)
                torch.cuda.empty_cache()
                continue
            for (runtime, variant), ms in medians.items():
                records.append(Record(size, runtime, variant, b, 0, ms / b, resolution=config.net.resolution,
                                      device=name))
            print(f"  {size} batch {b} on {name}: done", file=sys.stderr)


def bench_resolution(threads: int, records: list[Record], resolutions=(128, 256, 512)) -> None:
    torch.set_num_threads(threads)
    for res in resolutions:
        config = PRESETS["lite"]()
        config.net.resolution = res
        models = build_models(config, 1)
        with tempfile.TemporaryDirectory() as tmp:
            graphs = export_generator(models, Path(tmp), np.zeros((8, 68, 2), np.float32), pruned=False, int8=False)
            sess = ort_session(graphs["fp32"], threads)
            lm, ident = inputs(config, 1)
            ms = median_ms(lambda: sess.run(None, {"landmarks": lm.numpy(), "identity": ident.numpy()}))
        records.append(Record("lite", "onnxruntime", "fp32", 1, threads, ms, resolution=res, sweep="resolution"))


def bench_embedder(size: str, ks: list[int], threads: int, records: list[Record]) -> None:
    import onnx

    from export.onnx_export import export_module, prepare_modules

    torch.set_num_threads(threads)
    config = PRESETS[size]()
    models = build_models(config, 1)
    r = config.net.resolution
    with tempfile.TemporaryDirectory() as tmp:
        mods = prepare_modules(models, "meta")
        path = Path(tmp) / "e.onnx"
        onnx.save(export_module(mods.embedder, "meta", "embedder", (torch.zeros(1, 3, r, r), torch.zeros(1, 68, 2))), path)
        sess = ort_session(path, threads)
        for k in ks:
            feed = {"image": np.random.default_rng(0).random((k, 3, r, r), np.float32) * 2 - 1,
                    "landmarks": np.random.default_rng(1).random((k, 68, 2), np.float32) - 0.5}
            ms = median_ms(lambda: sess.run(None, feed), repeat=3, min_seconds=0.2)
            records.append(Record(size, "onnxruntime", "fp32", 1, threads, ms, graph="embedder", resolution=r, k=k))


def bench_native(size: str, batches: list[int], threads: int, records: list[Record]) -> None:
    """The C++ core (talkinghead._native) against onnxruntime's Python API on the same package."""
    try:
        from talkinghead import _native
    except ImportError as exc:
        print(f"  native core not built ({exc}); run bash bindings/build.sh", file=sys.stderr)
        return
    from export import export_checkpoint
    from training.checkpoint import CheckpointState, save_checkpoint

    config = PRESETS[size]()
    models = build_models(config, 1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "c.safetensors", models, CheckpointState())
        # attention kept, as in the ONNX Runtime fp32 rows (a random model's blocks add nothing, so the
        # exporter would otherwise leave them out)
        pkg = export_checkpoint(ckpt, Path(tmp) / "pkg", synthetic=True, samples=2, prune_attention=0).path
        model = _native.Model(str(pkg), provider="cpu", intra_op_threads=threads, variant="fp32")
        for b in batches:
            lm, ident = (t.numpy() for t in inputs(config, b))
            ms = median_ms(lambda: model.generate(lm, ident))
            records.append(Record(size, "native-c++", "fp32", b, threads, ms / b, resolution=config.net.resolution))
        records.extend(c_abi_records(pkg, size, batches, threads, config.net.resolution))


def c_abi_records(package: Path, size: str, batches: list[int], threads: int, resolution: int) -> list[Record]:
    """bench/native_speed.c (``th_bench``, built by bindings/build.sh): th_render through the C ABI
    in a process without Python, on ONNX Runtime's library from the onnxruntime wheel."""
    import subprocess

    import onnxruntime

    exe = REPO / "build" / "native" / "th_bench"
    libs = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))
    if not exe.is_file() or not libs:
        print(f"  C ABI bench not run: {exe} or the onnxruntime library is missing (bash bindings/build.sh)",
              file=sys.stderr)
        return []
    proc = subprocess.run([str(exe), str(package), str(threads), ",".join(map(str, batches))], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TALKINGHEAD_ORT_LIBRARY": str(libs[0])})
    if proc.returncode != 0:
        print(f"  C ABI bench failed: {proc.stderr.strip()}", file=sys.stderr)
        return []
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return [Record(size, "c-abi th_render", "fp32", r["batch"], r["threads"], r["ms_per_frame"], resolution=resolution)
            for r in rows]


def bench_packages(folders: list[Path], ks: list[int], threads: int, rounds: int) -> list[Record]:
    """Batch-1 generator time of real packages' fp32 and int8 graphs, round-robin (bench.timing)."""
    from talkinghead.package import ModelPackage

    runs, meta = {}, {}
    rng = np.random.default_rng(0)
    packages = [ModelPackage.load(folder) for folder in folders]
    names = [p.name for p in packages]
    for folder, pkg in zip(folders, packages):
        label = pkg.name if names.count(pkg.name) == 1 else f"{pkg.name} ({folder})"  # two builds of one model
        family = pkg.manifest.family
        r_ref = pkg.references.resolution if pkg.references else 0
        avatar = np.load(pkg.default_avatar_path) if pkg.default_avatar_path else None
        for variant in ["fp32"] + [v for v in ("int8",) if v in pkg.variant_names("generator")]:
            for k in (ks if family == "warp" else [0]):
                # A session per K: one session fed shapes that alternate re-plans its memory each run.
                sess = ort_session(pkg.graph_path("generator", variant), threads)
                feed = {"landmarks": (rng.random((1, 68, 2), np.float32) * 1.2 - 0.6)}
                if pkg.kind == "meta":
                    feed["identity"] = rng.standard_normal((1, pkg.embedding_dim)).astype(np.float32)
                if k and avatar is not None and avatar["ref_images"].shape[1] == r_ref:
                    feed.update(_face_feed(avatar, k, rng))
                elif k:
                    feed["ref_images"] = rng.random((k, 3, r_ref, r_ref), np.float32) * 2 - 1
                    feed["ref_landmarks"] = rng.random((k, 68, 2), np.float32) * 1.2 - 0.6
                key = (label, variant, k)
                runs[key] = lambda f, s=sess, feed=feed: s.run(None, feed)
                meta[key] = pkg.resolution
    medians = round_robin(runs, [{}] * 2, rounds=rounds, warmup=2)
    return [Record(name, "onnxruntime", variant, 1, threads, ms, resolution=meta[(name, variant, k)], k=k)
            for (name, variant, k), ms in medians.items()]


def _face_feed(avatar, k: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A warp generator's inputs from the package's default avatar: its shot k times (each darker
    by a step, its landmarks jittered by 1% of the crop) and a target near its face. A warp's cost
    depends on its field: random landmarks fold the mesh, and the warp then reads the shots at
    scattered places (cache misses a face never causes)."""
    shot = avatar["ref_images"][:1].astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1
    lms = avatar["ref_landmarks"][:1].astype(np.float32)

    def jitter(n: int) -> np.ndarray:
        return rng.normal(0, 0.01, (n, 68, 2)).astype(np.float32)

    return {"landmarks": lms + jitter(1),
            "ref_images": np.concatenate([shot * (1 - 0.05 * i) for i in range(k)]),
            "ref_landmarks": np.concatenate([lms] * k) + jitter(k) * (np.arange(k) > 0)[:, None, None]}


def package_table(records: list[Record], cpu: str) -> str:
    base = records[0].ms_per_frame
    lines = [cpu, "", f"batch 1, {records[0].threads} thread(s); ratio: ms per frame / {records[0].model} "
             f"{records[0].variant}'s", "",
             "| model | variant | K | ms/frame | FPS | ratio |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in records:
        lines.append(f"| {r.model} | {r.variant} | {r.k or ''} | {r.ms_per_frame:.1f} | {1000 / r.ms_per_frame:.1f} "
                     f"| {r.ms_per_frame / base:.2f}x |")
    return "\n".join(lines)


def table(records: list[Record]) -> str:
    """Markdown: one row per (graph, model, runtime, variant, batch, device) with the ratio to eager
    on the same device."""
    eager = {(r.model, r.batch, r.resolution, r.device): r.ms_per_frame for r in records
             if r.runtime == "pytorch" and r.variant == "fp32" and r.graph == "generator" and not r.sweep}
    lines = ["| graph | model | device | runtime | variant | batch | res | K | threads | ms/frame | FPS | vs eager |",
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in records:
        base = (eager.get((r.model, r.batch, r.resolution, r.device))
                if r.graph == "generator" and not r.sweep else None)
        ratio = f"{base / r.ms_per_frame:.2f}x" if base else ""
        k = str(r.k) if r.k else ""
        fps = f"{1000 / r.ms_per_frame:.1f}" if r.graph == "generator" else ""
        threads = str(r.threads) if r.threads else ""
        lines.append(f"| {r.graph} | {r.model} | {r.device} | {r.runtime} | {r.variant} | {r.batch} | {r.resolution} "
                     f"| {k} | {threads} | {r.ms_per_frame:.1f} | {fps} | {ratio} |")
    return "\n".join(lines)


def plot(records: list[Record], path: Path) -> None:
    """A PNG bar chart of generator ms/frame at batch 1 (Pillow; no plotting dependency)."""
    from PIL import Image, ImageDraw

    rows = [r for r in records
            if r.graph == "generator" and r.batch == 1 and r.resolution == 256 and not r.sweep and r.device == "cpu"]
    if not rows:
        return
    w, h = 800, 60 + 40 * len(rows)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    top = max(r.ms_per_frame for r in rows)
    d.text((10, 10), "generator, batch 1, 256x256: ms per frame (lower is better)", fill="black")
    for i, r in enumerate(rows):
        y = 40 + i * 40
        bw = int((w - 330) * r.ms_per_frame / top)
        d.text((10, y + 8), f"{r.model} {r.runtime} {r.variant}", fill="black")
        d.rectangle([250, y, 250 + bw, y + 28], fill=(70, 110, 200))
        d.text((255 + bw, y + 8), f"{r.ms_per_frame:.1f} ms", fill="black")
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="lite,paper")
    p.add_argument("--batches", default="1,4,16")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--ks", default="1,8,32", help="shots for the embedder timing")
    p.add_argument("--resolutions", default="128,256,512")
    p.add_argument("--rounds", type=int, default=4,
                   help="round-robin passes for the generator runtimes (2 calls each per pass; default 4)")
    p.add_argument("--cuda", choices=("auto", "on", "off"), default="auto",
                   help="also time the generators on the GPU (auto: when torch sees one)")
    p.add_argument("--gpu-batches", default="1,4,16,64", help="batches on the GPU (the best one gives throughput)")
    p.add_argument("--cpu", choices=("on", "off"), default="on",
                   help="off: only the GPU rows (a short run on a lent GPU machine)")
    p.add_argument("--packages", type=Path, nargs="+", help="time these packages' generators instead (see above)")
    p.add_argument("--package-ks", default="1,8", help="reference shots of a warp package's generator")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)
    from export.quantize import cpu_description

    cpu = cpu_description()
    print(cpu, file=sys.stderr)
    if args.packages:
        records = bench_packages(args.packages, [int(k) for k in args.package_ks.split(",")], args.threads,
                                 args.rounds)
        write_report(package_table(records, cpu), records, args.markdown, args.json)
        return 0
    cuda = args.cuda == "on" or (args.cuda == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise SystemExit("error: --cuda on, but torch sees no CUDA device")
    if args.cpu == "off" and not cuda:
        raise SystemExit("error: --cpu off leaves nothing to time without a CUDA device")
    print(f"GPU rows: {'on ' + torch.cuda.get_device_name(0) if cuda else 'off (no CUDA device)'}", file=sys.stderr)
    records: list[Record] = []
    for size in args.sizes.split(","):
        if args.cpu == "on":
            print(f"generator {size} ...", file=sys.stderr)
            bench_generator(size, [int(b) for b in args.batches.split(",")], args.threads, records, args.rounds)
        if cuda:
            bench_generator_cuda(size, [int(b) for b in args.gpu_batches.split(",")], records, args.rounds)
        if args.cpu == "on":
            if size == "lite":
                print("native core lite ...", file=sys.stderr)
                bench_native(size, [int(b) for b in args.batches.split(",")], args.threads, records)
            print(f"embedder {size} ...", file=sys.stderr)
            bench_embedder(size, [int(k) for k in args.ks.split(",")], args.threads, records)
    if args.resolutions and args.cpu == "on":
        print("resolution scaling ...", file=sys.stderr)
        bench_resolution(args.threads, records, [int(r) for r in args.resolutions.split(",")])
    write_report(cpu + "\n\n" + table(records), records, args.markdown, args.json)
    if args.plot:
        plot(records, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

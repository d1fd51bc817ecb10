"""Checkpoint -> model package: the export pipeline behind ``python -m export``.

Stages (each logged with its time on the ``export`` logger):
 1. check the output path (an existing OUT_DIR is refused unless ``overwrite``);
 2. load the checkpoint (meta-learned, or personalised: identity baked in, no embedder);
 3. load parity/calibration inputs (real face crops, see :mod:`export.data`);
 4. measure which of the generator's self-attention blocks add nothing (:mod:`export.prune`);
 5. export the graphs (spectral norm folded, named inputs/outputs, dynamic batch, role stamped, the
    unused attention left out), simplify them (onnxslim) and check them (onnx.checker, strict shape
    inference);
 6. parity: ONNX Runtime CPU against the PyTorch modules, max abs <= tolerance or the export fails;
 7. variants (int8, fp16) of the generator, each with its error against the fp32 graph;
 8. write everything and manifest.json into a temporary folder beside OUT_DIR, load it back with
    :class:`talkinghead.package.ModelPackage` (hashes, paths, role stamps), then rename it into place.
Nothing is written at OUT_DIR unless every stage passed.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import onnx
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.manifest import expected_io
from talkinghead.package import ModelPackage

from training.checkpoint import load_checkpoint
from training.config import REFERENCE_SCALES
from training.errors import CheckpointError
from training.networks.generator import PersonalisedGenerator
from training.networks.warp_generator import STAGES, SharedReferences

from . import data as data_mod
from .errors import ExportError
from .manifest_writer import build_manifest, graph_record, training_record, variant_entry, write_manifest
from .onnx_export import DEFAULT_OPSET, export_module, prepare_modules
from .parity import check_batch_one, cpu_session, diff, run_session, run_torch
from .prune import PrunedAttention, attention_off, negligible_attention, remove_attention
from .simplify import check, interface, simplify
from .variants import VARIANTS, build_variant

log = logging.getLogger("export")
WARP_PARITY_SHOTS = 4  # reference shots of the parity/calibration avatar (a warp generator's K)

@dataclass
class ExportOptions:
    """What to export and how.

    Attributes:
        variants: generator variants to add besides fp32 (``int8``, ``fp16``).
        opset: ONNX opset of the graphs (13..20; 17 by default).
        overwrite: replace an existing package at the output path.
        calibration: a prepared dataset folder for parity and int8 calibration inputs (default: the
            shared data's face photos, else synthetic inputs).
        samples: how many inputs to use for parity and calibration.
        synthetic: use synthetic inputs even when real data is available (tests, offline runs).
        tolerance: max abs difference allowed between ONNX Runtime and PyTorch (fp32).
        instance_norm: "auto" exports ONNX Runtime's fused InstanceNormalization and falls back to
            the more precise two-stage form when parity fails; "fused" / "two-stage" force one.
        name: the package name (default ``talkinghead-<size>[-personalised]``).
        version: the package's own version.
        threads: ONNX Runtime threads for the parity runs.
        prune_attention: leave out of the generator graph the self-attention blocks whose removal
            moves its output by at most this much (max abs on the parity inputs; 2e-3 is a quarter
            of one 8-bit level); 0 keeps every block. See :mod:`export.prune`.
        stages: a warp-family generator exported with only these learned stages (a prefix of
            ``prior, flow, blend, synthesis``: the ablation table, bench/warp_ablation.py); None
            exports the whole model. The package is named ``talkinghead-warp-<last stage>``.
        reference_scale: warp family: the avatar keeps its reference shots at this multiple of the
            output resolution (``references.resolution`` in the manifest), so the generator's warp
            samples real pixels down once instead of interpolating an already resampled crop (issue
            24). 1 keeps them at the output resolution.
        rewrite: replace the generator's GridSample and non-last-axis Softmax by exact equivalents
            that ONNX Runtime's CPU kernels run faster (:mod:`export.rewrite`); parity is checked on
            the rewritten graph. False keeps the traced operators.
    """

    variants: tuple[str, ...] = ()
    opset: int = DEFAULT_OPSET
    overwrite: bool = False
    calibration: Path | None = None
    samples: int = 16
    synthetic: bool = False
    tolerance: float = 1e-4
    instance_norm: Literal["auto", "fused", "two-stage"] = "auto"
    name: str | None = None
    version: str = "0.1.0"
    threads: int = 2
    prune_attention: float = 2e-3
    stages: tuple[str, ...] | None = None
    reference_scale: int = 1
    rewrite: bool = True

    def validate(self) -> "ExportOptions":
        if self.stages is not None and tuple(self.stages) not in [STAGES[:n] for n in range(1, len(STAGES) + 1)]:
            raise ExportError(f"stages must be a prefix of {', '.join(STAGES)}, got {', '.join(self.stages)}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ExportError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
        if len(set(self.variants)) != len(self.variants):
            raise ExportError(f"variants listed twice: {list(self.variants)}")
        if self.reference_scale not in REFERENCE_SCALES:
            raise ExportError(f"reference_scale must be one of {REFERENCE_SCALES}, got {self.reference_scale}")
        if not 13 <= self.opset <= 20:
            raise ExportError(f"opset must be in 13..20 (QDQ per-channel needs 13), got {self.opset}")
        if not 1 <= self.samples <= 256:
            raise ExportError(f"samples must be in 1..256, got {self.samples}")
        if not self.prune_attention >= 0:
            raise ExportError(f"prune_attention must be >= 0, got {self.prune_attention}")
        if not self.tolerance > 0:
            raise ExportError(f"tolerance must be > 0, got {self.tolerance}")
        if self.instance_norm not in ("auto", "fused", "two-stage"):
            raise ExportError(f"instance_norm must be auto, fused or two-stage, got {self.instance_norm!r}")
        if self.calibration is not None and not Path(self.calibration).is_dir():
            raise ExportError(f"--calibration {self.calibration}: not a folder")
        return self


@dataclass
class ExportResult:
    path: Path
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


class _Stages:
    def __init__(self, total: int) -> None:
        self.total, self.n, self.timings = total, 0, {}
        self.start = time.perf_counter()

    @contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        self.n += 1
        log.info("[%d/%d] %s ...", self.n, self.total, title)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[title] = round(dt, 2)
        log.info("[%d/%d] %s: done in %.1f s", self.n, self.total, title, dt)


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise ExportError(f"{out} exists; pass --overwrite to replace it")
        if not out.is_dir() or out.is_symlink():
            raise ExportError(f"{out} exists and is not a folder; refusing to replace it")
        if any(out.iterdir()) and not (out / "manifest.json").is_file():
            raise ExportError(f"{out} is a non-empty folder that is not a model package; refusing to replace it")


def _expected_shapes_ok(model: onnx.ModelProto, kind: str, role: str, resolution: int, dim: int,
                        family: str = "adain", ref_resolution: int | None = None) -> None:
    want_in, want_out = expected_io(kind, role, resolution, dim, family, ref_resolution)
    got_in, got_out = interface(model)
    if (got_in, got_out) != (want_in, want_out):
        raise ExportError(f"{role}: the exported interface {got_in} -> {got_out} is not the contract's "
                          f"{want_in} -> {want_out}")


def _declare_interface(model: onnx.ModelProto, kind: str, role: str, resolution: int, dim: int,
                       family: str = "adain", ref_resolution: int | None = None) -> None:
    """Write the contract's shapes on the graph's inputs and outputs (shape inference then checks them)."""
    want_in, want_out = expected_io(kind, role, resolution, dim, family, ref_resolution)
    for values, wants in ((model.graph.input, want_in), (model.graph.output, want_out)):
        for v, w in zip(values, wants):
            dims = v.type.tensor_type.shape.dim
            del dims[:]
            for d in w["shape"]:
                new = dims.add()
                if isinstance(d, int):
                    new.dim_value = d
                else:
                    new.dim_param = d


class _Exporter:
    def __init__(self, checkpoint: Path, out: Path, opts: ExportOptions) -> None:
        self.checkpoint, self.out, self.opts = checkpoint, out, opts
        self.stages = _Stages(7 + (1 if opts.variants else 0))
        self.pruned = PrunedAttention((), opts.prune_attention, 0.0, 0.0)

    # -- stages ---------------------------------------------------------------------------------

    def load(self) -> None:
        try:
            self.models, self.state = load_checkpoint(self.checkpoint)
        except CheckpointError as exc:
            raise ExportError(str(exc)) from exc
        self.kind = "personalised" if self.state.kind == "personalised" else "meta"
        cfg = self.models.config
        self.resolution, self.dim = cfg.net.resolution, cfg.net.embedding_dim
        self.family = cfg.net.family
        if self.opts.reference_scale != 1 and self.family != "warp":
            raise ExportError(f"{self.checkpoint}: reference_scale applies to the warp family only, not '{self.family}'")
        self.ref_resolution = self.resolution * self.opts.reference_scale if self.family == "warp" else None
        for m in (self.models.embedder, self.models.generator, self.models.discriminator):
            if m is not None:
                m.eval()
        if self.opts.stages is not None:
            if self.family != "warp":
                raise ExportError(f"{self.checkpoint}: stages apply to the warp family only, not '{self.family}'")
            self.models.generator.stages = tuple(self.opts.stages)
        if self.family == "warp":
            if self.kind == "personalised":
                raise ExportError(f"{self.checkpoint}: a personalised warp-family checkpoint cannot be exported yet")
            self.reference = {"embedder": self.models.embedder,
                              "generator": SharedReferences(self.models.generator).eval()}
        elif self.kind == "personalised":
            if self.models.psi is None:
                raise ExportError(f"{self.checkpoint} is marked personalised but holds no personal.psi")
            self.reference = {"generator": PersonalisedGenerator(self.models.generator, self.models.psi).eval()}
        else:
            self.reference = {"embedder": self.models.embedder, "generator": self.models.generator}
        log.info("checkpoint: %s model, size %s, %dx%d, embedding %d, step %d", self.kind, cfg.size,
                 self.resolution, self.resolution, self.dim, self.state.step)

    def load_samples(self) -> None:
        o = self.opts
        self.samples = data_mod.load_samples(self.resolution, o.samples, o.calibration, allow_real=not o.synthetic)
        log.info("inputs: %s", self.samples.description[:200])
        s = self.samples
        self.feeds: dict[str, dict[str, np.ndarray]] = {}
        if self.kind == "meta":
            self.feeds["embedder"] = {"image": s.images, "landmarks": s.landmarks}
            identity = run_torch(self.reference["embedder"], self.feeds["embedder"])
            self.feeds["generator"] = {"landmarks": s.driving_landmarks(), "identity": identity}
            if self.family == "warp":  # one avatar of the first shots drives every sample
                k = min(WARP_PARITY_SHOTS, len(s))
                refs = s if self.ref_resolution == self.resolution else data_mod.load_samples(
                    self.ref_resolution, k, o.calibration, allow_real=not o.synthetic)
                self.feeds["generator"].update(ref_images=refs.images[:k], ref_landmarks=refs.landmarks[:k])
        else:
            self.feeds["generator"] = {"landmarks": s.driving_landmarks()}

    def plan_pruning(self) -> None:
        if self.opts.prune_attention == 0 or self.family == "warp":  # the warp generator has no attention
            return
        self.pruned = negligible_attention(self.reference["generator"], self.feeds["generator"],
                                           self.opts.prune_attention)
        log.info("generator attention left out: %s (output moves by %.3g max abs, tolerance %g)",
                 ", ".join(self.pruned.blocks) or "none", self.pruned.max_abs, self.pruned.tolerance)

    def _export(self, role: str, fused: bool) -> onnx.ModelProto:
        modules = prepare_modules(self.models, self.kind, two_stage_norm=not fused)
        module = modules.embedder if role == "embedder" else modules.generator
        if role == "generator" and self.pruned.blocks:
            remove_attention(module, self.pruned.blocks)
        example = tuple(torch.from_numpy(v[:2]) for v in self.feeds[role].values())
        family = self.family if role == "generator" else "adain"
        model = export_module(module, self.kind, role, example, self.opts.opset, family)
        _declare_interface(model, self.kind, role, self.resolution, self.dim, family, self.ref_resolution)
        model = simplify(model, role)
        if role == "generator" and self.opts.rewrite:
            from .rewrite import rewrite_graph  # here, so that `python -m export.rewrite` imports it once

            counts = rewrite_graph(model)
            if any(counts.values()):
                log.info("generator: rewritten for ONNX Runtime's CPU kernels: %s", counts)
                model = check(model, role)
        _expected_shapes_ok(model, self.kind, role, self.resolution, self.dim, family, self.ref_resolution)
        return model

    def export_graphs(self) -> None:
        fused = self.opts.instance_norm in ("auto", "fused")
        self.graphs: dict[str, onnx.ModelProto] = {}
        self.norm: dict[str, str] = {}
        for role in self.reference:
            self.graphs[role] = self._export(role, fused)
            self.norm[role] = "fused" if fused else "two-stage"
            log.info("%s: %d nodes, %.1f MB", role, len(self.graphs[role].graph.node),
                     self.graphs[role].ByteSize() / 1e6)
        self.fused_generator = self.graphs["generator"] if fused else None

    def _parity(self, role: str) -> tuple[Any, Any, np.ndarray]:
        session = cpu_session(self.graphs[role], self.opts.threads)
        feeds = self.feeds[role]
        got = run_session(session, feeds)
        with attention_off(self.reference[role], self.pruned.blocks if role == "generator" else ()):
            want = run_torch(self.reference[role], feeds)
        return diff(got, want), check_batch_one(session, feeds, got), got

    def parity(self) -> None:
        tol = self.opts.tolerance
        self.parity_result: dict[str, Any] = {"tolerance": tol, "data": data_mod.describe(self.samples)}
        self.outputs: dict[str, np.ndarray] = {}
        for role in self.reference:
            d, one, out = self._parity(role)
            if d.max_abs > tol and self.opts.instance_norm == "auto" and self.norm[role] == "fused":
                log.info("%s: fused instance norm is off by %s; re-exporting with two-stage instance norm",
                         role, d)
                self.graphs[role] = self._export(role, fused=False)
                self.norm[role] = "two-stage"
                d, one, out = self._parity(role)
            log.info("%s parity (ONNX Runtime CPU vs PyTorch, %d samples, %s instance norm): %s; batch of one: %s",
                     role, len(self.samples), self.norm[role], d, one)
            if d.max_abs > tol or one.max_abs > tol:
                worst = max(d.max_abs, one.max_abs)
                raise ExportError(f"{role}: parity check failed: ONNX Runtime differs from PyTorch by {worst:.3g} "
                                  f"max abs (tolerance {tol:g}); no package written")
            self.parity_result[role] = d.as_dict()
            self.outputs[role] = out
        if self.pruned.blocks:
            self.parity_result["pruned"] = self.pruned.as_dict()

    def variants(self) -> None:
        self.variant_models: dict[str, onnx.ModelProto] = {}
        self.variant_records: dict[str, dict[str, Any]] = {}
        if self.fused_generator is None:
            self.fused_generator = self._export("generator", fused=True)
        for name in self.opts.variants:
            self.variant_models[name], self.variant_records[name] = build_variant(
                name, self.fused_generator, self.feeds["generator"], self.outputs["generator"],
                self.samples.description, self.opts.threads)

    def write(self) -> Path:
        parent = self.out.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{self.out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            graphs = {}
            for role, model in self.graphs.items():
                path = tmp / f"{role}.onnx"
                onnx.save(model, path)
                graphs[role] = graph_record(path, model)
            variants = {}
            for name, model in getattr(self, "variant_models", {}).items():
                path = tmp / f"generator.{name}.onnx"
                onnx.save(model, path)
                variants[name] = variant_entry(path, self.variant_records[name])
            cfg = self.models.config
            suffix = "-personalised" if self.kind == "personalised" else ""
            if self.opts.stages is not None and self.opts.stages != STAGES:
                suffix += f"-{self.opts.stages[-1]}"
            name = self.opts.name or f"talkinghead-{cfg.size}{suffix}"
            self.manifest = build_manifest(
                name=name, version=self.opts.version, size=cfg.size, kind=self.kind, resolution=self.resolution,
                embedding_dim=self.dim, graphs=graphs, variants=variants, parity=self.parity_result,
                training=training_record(cfg, self.state), family=self.family,
                references=self._references())
            write_manifest(tmp, self.manifest)
            try:
                ModelPackage.load(tmp)  # the SDK's own checks: paths, hashes, role stamps, opset
            except TalkingHeadError as exc:
                raise ExportError(f"the written package does not load: {exc}") from exc
            self._move_into_place(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.out

    def _references(self) -> dict[str, Any] | None:
        if self.family != "warp":
            return None
        return {"cap": self.models.config.net.warp.reference_cap, "resolution": self.ref_resolution,
                "selection": "farthest-landmarks"}

    def _move_into_place(self, tmp: Path) -> None:
        _check_output(self.out, self.opts.overwrite)  # again: something may have appeared meanwhile
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(self.out, old)
            os.rename(tmp, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, self.out)

    def run(self) -> ExportResult:
        st = self.stages
        with st("checking the output path"):
            _check_output(self.out, self.opts.overwrite)
        with st(f"loading {self.checkpoint.name}"):
            self.load()
        with st("loading parity and calibration inputs"):
            self.load_samples()
        with st("measuring the generator's attention blocks"):
            self.plan_pruning()
        with st(f"exporting {' and '.join(self.reference)} (opset {self.opts.opset})"):
            self.export_graphs()
        with st("parity against PyTorch"):
            self.parity()
        if self.opts.variants:
            with st(f"variants {', '.join(self.opts.variants)}"):
                self.variants()
        with st(f"writing {self.out}"):
            self.write()
        total = time.perf_counter() - st.start
        log.info("exported %s in %.1f s", self.out, total)
        return ExportResult(self.out, self.manifest, {**st.timings, "total": round(total, 2)})


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                      options: ExportOptions | None = None, **kwargs: Any) -> ExportResult:
    """Export a checkpoint to a model package folder.

    Args:
        checkpoint: a ``checkpoint.safetensors`` (meta-learned or personalised).
        out_dir: the package folder to create.
        options: an :class:`ExportOptions`; or give its fields as keyword arguments.

    Raises:
        ExportError: the output exists (without ``overwrite``), the checkpoint is unreadable, a graph
            fails the ONNX checker, or parity fails. Nothing is written at ``out_dir`` then.
    """
    if options is None:
        options = ExportOptions(**kwargs)
    elif kwargs:
        raise TypeError("give either options or keyword arguments, not both")
    if isinstance(options.variants, str):
        options.variants = tuple(v for v in options.variants.split(",") if v)
    options.validate()
    return _Exporter(Path(checkpoint), Path(out_dir), options).run()

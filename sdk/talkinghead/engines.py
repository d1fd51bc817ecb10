"""The two ways a model's graphs run: onnxruntime's Python API, or the C++ core (``_native``).

Both take the same arrays and give the same results (tests/bindings/test_native.py): embed
([N,3,R,R] in [-1,1] + [N,68,2] -> [N,D]) and generate ([B,68,2] (+ [B,D]) -> [B,3,R,R]). Everything
around them (detection, crops, motion, paste-back) is the same Python code.
"""
from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from .errors import InputError, MissingDependencyError
from .package import ModelPackage
from .providers import resolve_providers
from .sessions import GraphSession, SessionConfig

Backend = Literal["onnxruntime", "native"]


class Engine(Protocol):
    providers: list[str]
    variant: str

    def embed(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...

    def generate(self, landmarks: np.ndarray, identity: np.ndarray | None) -> np.ndarray: ...


def generator_variant(package: ModelPackage, config: SessionConfig) -> str:
    """The generator variant to run ("auto": fp16 on CUDA when packaged, else fp32)."""
    if config.variant != "auto":
        return config.variant
    on_cuda = resolve_providers(config.providers)[0] == "CUDAExecutionProvider"
    return "fp16" if on_cuda and "fp16" in package.variant_names("generator") else "fp32"


class OrtEngine:
    """Sessions on onnxruntime's Python API, created once, checked against the manifest."""

    def __init__(self, package: ModelPackage, config: SessionConfig) -> None:
        self.variant = generator_variant(package, config)
        self.generator = GraphSession(package.graph_path("generator", self.variant), "generator", config)
        package.check_session(self.generator.session, "generator", self.variant)
        self.embedder = None
        if package.has_graph("embedder"):
            self.embedder = GraphSession(package.graph_path("embedder"), "embedder", config)
            package.check_session(self.embedder.session, "embedder")
        self.providers = self.generator.providers

    def embed(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        if self.embedder is None:
            raise InputError("a personalised package has no embedder: its identity is built in")
        return self.embedder.run(image=images, landmarks=landmarks)

    def generate(self, landmarks: np.ndarray, identity: np.ndarray | None) -> np.ndarray:
        if identity is None:
            return self.generator.run(landmarks=landmarks)
        return self.generator.run(landmarks=landmarks, identity=identity)


class NativeEngine:
    """The C++ core through pybind11 (``bash bindings/build.sh`` builds ``talkinghead._native``)."""

    def __init__(self, package: ModelPackage, config: SessionConfig) -> None:
        try:
            from . import _native
        except ImportError as exc:
            raise MissingDependencyError("backend='native' needs the C++ core: run `bash bindings/build.sh` "
                                         f"in a checkout ({exc})") from exc
        providers = config.providers
        name = providers.lower() if isinstance(providers, str) else None
        if name not in ("auto", "cpu", "cuda"):
            raise InputError(f"backend='native' takes providers 'auto', 'cpu' or 'cuda', got {providers!r}")
        self.variant = generator_variant(package, config)
        self.model = _native.Model(str(package.folder), provider=name, intra_op_threads=config.intra_op_threads,
                                   inter_op_threads=config.inter_op_threads, variant=self.variant,
                                   allow_spinning=config.allow_spinning)
        self.providers = ["CUDAExecutionProvider" if self.model.provider == "cuda" else "CPUExecutionProvider"]

    def embed(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.model.embed(np.ascontiguousarray(images, np.float32), np.ascontiguousarray(landmarks, np.float32))

    def generate(self, landmarks: np.ndarray, identity: np.ndarray | None) -> np.ndarray:
        lm = np.ascontiguousarray(landmarks, np.float32)
        if identity is None:
            return self.model.generate(lm)
        return self.model.generate(lm, np.ascontiguousarray(identity, np.float32))


def create_engine(package: ModelPackage, config: SessionConfig, backend: Backend = "onnxruntime") -> Engine:
    if backend == "onnxruntime":
        return OrtEngine(package, config)
    if backend == "native":
        return NativeEngine(package, config)
    raise InputError(f"backend must be 'onnxruntime' or 'native', got {backend!r}")

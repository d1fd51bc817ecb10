"""The two ways a model's graphs run: onnxruntime's Python API, or the C++ core (``_native``).

Both take the same arrays and give the same results (tests/bindings/test_native.py): embed
([N,3,R,R] in [-1,1] + [N,68,2] -> [N,D]) and generate ([B,68,2] (+ [B,D]) (+ a warp package's
references: [K,3,S,S] + [K,68,2]) -> [B,3,R,R]). Everything
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
References = tuple[np.ndarray, np.ndarray]  # ref_images [K,3,S,S] float32 in [-1,1], ref_landmarks [K,68,2]


class Engine(Protocol):
    providers: list[str]
    variant: str

    def embed(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...

    def generate(self, landmarks: np.ndarray, identity: np.ndarray | None,
                 references: References | None = None) -> np.ndarray: ...


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

    def generate(self, landmarks: np.ndarray, identity: np.ndarray | None,
                 references: References | None = None) -> np.ndarray:
        feeds = {"landmarks": landmarks}
        if identity is not None:
            feeds["identity"] = identity
        if references is not None:
            feeds["ref_images"], feeds["ref_landmarks"] = references
        return self.generator.run(**feeds)


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
        # Every session option is honoured or refused by name (the C++ core fixes these two).
        if config.graph_optimization != "all":
            raise InputError(f"backend='native' always optimises graphs fully; graph_optimization="
                             f"{config.graph_optimization!r} needs backend='onnxruntime'")
        if not config.enable_mem_arena:
            raise InputError("backend='native' always uses ONNX Runtime's memory arena; enable_mem_arena=False "
                             "needs backend='onnxruntime'")
        self.variant = generator_variant(package, config)
        # ModelPackage.load has verified every file's sha256 already: the core does not hash them again.
        self.model = _native.Model(str(package.folder), provider=name, intra_op_threads=config.intra_op_threads,
                                   inter_op_threads=config.inter_op_threads, variant=self.variant,
                                   allow_spinning=config.allow_spinning, verify_hashes=False, watermark=False)
        self.providers = ["CUDAExecutionProvider" if self.model.provider == "cuda" else "CPUExecutionProvider"]

    def embed(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.model.embed(np.ascontiguousarray(images, np.float32), np.ascontiguousarray(landmarks, np.float32))

    def generate(self, landmarks: np.ndarray, identity: np.ndarray | None,
                 references: References | None = None) -> np.ndarray:
        lm = np.ascontiguousarray(landmarks, np.float32)
        if identity is None:
            return self.model.generate(lm)
        ident = np.ascontiguousarray(identity, np.float32)
        if references is None:
            return self.model.generate(lm, ident)
        images, ref_lm = (np.ascontiguousarray(a, np.float32) for a in references)
        return self.model.generate(lm, ident, images, ref_lm)


def create_engine(package: ModelPackage, config: SessionConfig, backend: Backend = "onnxruntime") -> Engine:
    if backend == "onnxruntime":
        return OrtEngine(package, config)
    if backend == "native":
        return NativeEngine(package, config)
    raise InputError(f"backend must be 'onnxruntime' or 'native', got {backend!r}")

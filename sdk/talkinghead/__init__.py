"""talkinghead: few-shot neural talking heads (Zakharov et al. 2019) as an ONNX inference SDK."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ImageReadError,
    InputError,
    MissingDependencyError,
    ModelPackageError,
    NoFaceError,
    OutputExistsError,
    ProvenanceError,
    ProviderError,
    TalkingHeadError,
    VideoError,
)

from .avatar import Avatar  # noqa: E402
from .controls import Controls  # noqa: E402
from .model import TalkingHeadModel, load_model  # noqa: E402
from .package import ModelPackage  # noqa: E402
from .sessions import SessionConfig  # noqa: E402
from .stream import LiveStream, Stream, StreamStats  # noqa: E402

__all__ = [
    "__version__",
    "load_model",
    "TalkingHeadModel",
    "Avatar",
    "Controls",
    "Stream",
    "LiveStream",
    "StreamStats",
    "ModelPackage",
    "SessionConfig",
    "TalkingHeadError",
    "InputError",
    "ImageReadError",
    "NoFaceError",
    "VideoError",
    "ModelPackageError",
    "ProvenanceError",
    "ProviderError",
    "OutputExistsError",
    "MissingDependencyError",
]

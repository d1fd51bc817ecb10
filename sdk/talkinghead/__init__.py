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
    ProviderError,
    TalkingHeadError,
    VideoError,
)

__all__ = [
    "__version__",
    "TalkingHeadError",
    "InputError",
    "ImageReadError",
    "NoFaceError",
    "VideoError",
    "ModelPackageError",
    "ProviderError",
    "OutputExistsError",
    "MissingDependencyError",
]

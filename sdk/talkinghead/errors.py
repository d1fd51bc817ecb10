"""Exception types of the talkinghead SDK.

Every error the SDK raises on bad input derives from :class:`TalkingHeadError`, so callers can
catch one type. The command line maps these to exit code 2 (user error); anything else is an
internal failure (exit code 1).
"""
from __future__ import annotations


class TalkingHeadError(Exception):
    """Base class of every error talkinghead raises on purpose."""


class InputError(TalkingHeadError, ValueError):
    """An argument has the wrong type, shape, dtype or value (e.g. NaN landmarks)."""


class ImageReadError(TalkingHeadError):
    """A file is missing, unreadable or not an image."""


class NoFaceError(TalkingHeadError):
    """No face was found in an image or video frame."""


class VideoError(TalkingHeadError):
    """A video is missing, corrupt, truncated or has no decodable frames."""


class ModelPackageError(TalkingHeadError):
    """A model package is missing, corrupt, tampered with or of an unknown schema version.

    ``key``: for a manifest that breaks the contract, the offending key's path (for example
    ``landmarks.crop.offset_y``): the stable code that the C++ core gives too (th::Error::key), and
    that the conformance corpus (contract/manifests) records per case; None otherwise.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ProviderError(TalkingHeadError):
    """An execution provider was asked for that this onnxruntime does not have."""


class OutputExistsError(TalkingHeadError):
    """An output path exists and overwriting was not allowed."""


class ProvenanceError(TalkingHeadError):
    """A C2PA manifest could not be added: an unreadable key or certificate, a key that does not
    match its certificate or algorithm, a certificate C2PA does not accept, or a file type C2PA
    cannot sign."""


class MissingDependencyError(TalkingHeadError, ImportError):
    """An optional dependency (an extra such as ``talkinghead[landmarks]``) is not installed."""

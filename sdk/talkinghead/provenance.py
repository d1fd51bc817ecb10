"""Provenance of what the SDK writes: container tags that say the file is synthetic, a C2PA manifest
when the user supplies a signing key and certificate (the ``provenance`` extra: c2pa-python), and
``talkinghead verify``'s check of a file (the invisible watermark, talkinghead.watermark, the tags
and the C2PA manifest's validity).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .errors import InputError, MissingDependencyError, ProvenanceError, TalkingHeadError, VideoError

PREFIX = "talkinghead_"
MAX_VERIFY_FRAMES = 150  # frames of a video folded together (evenly from its start)
PROVENANCE_EXTRA = "pip install 'talkinghead[provenance]'"
C2PA_ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
# IPTC's digital source type for media made by a trained model (what C2PA's c2pa.created action names)
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
C2PA_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
             ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def tags(model) -> dict[str, str]:
    """Container tags for a file written with ``model``: synthetic, the tool, the model's name,
    version and generator hash."""
    pkg = model.package
    sha = pkg.manifest.graphs["generator"].sha256 if "generator" in pkg.manifest.graphs else ""
    return {
        "comment": f"Synthetic video made by talkinghead {__version__} (model {pkg.name} {pkg.version})",
        f"{PREFIX}synthetic": "true",
        f"{PREFIX}tool": f"talkinghead {__version__}",
        f"{PREFIX}model": pkg.name,
        f"{PREFIX}model_version": pkg.version,
        f"{PREFIX}model_sha256": sha,
        f"{PREFIX}watermark": "on" if getattr(model, "marker", None) is not None else "off",
    }


def _c2pa():
    """The c2pa module (c2pa-python), or MissingDependencyError naming the extra."""
    try:
        import c2pa
    except ImportError:
        raise MissingDependencyError(f"C2PA signing needs the provenance extra (c2pa-python): {PROVENANCE_EXTRA}") from None
    return c2pa


@dataclass(frozen=True)
class C2paSigning:
    """Who signs the C2PA manifest of written files: a private key and its certificate chain (PEM
    files, the signing certificate first, then its issuers), and the key's algorithm (es256 for a
    P-256 EC key, ps256 for RSA, ed25519, ...). :meth:`check` fails early on what can be seen
    before any work: a missing file, an unknown algorithm, the extra not installed."""

    key: Path
    cert: Path
    alg: str = "es256"

    def check(self) -> None:
        """Raise InputError for a missing file or an unknown algorithm, MissingDependencyError
        without the provenance extra."""
        if self.alg not in C2PA_ALGORITHMS:
            raise InputError(f"C2PA algorithm {self.alg!r} is not one of {', '.join(C2PA_ALGORITHMS)}")
        for what, path in (("key", self.key), ("certificate", self.cert)):
            if not Path(path).is_file():
                raise InputError(f"C2PA signing {what} {path}: no such file")
        _c2pa()


def c2pa_mime(path: str | os.PathLike) -> str:
    """The MIME type C2PA signs ``path`` as (by its extension), or InputError."""
    mime = C2PA_MIME.get(Path(path).suffix.lower())
    if mime is None:
        raise InputError(f"{path}: C2PA signing takes {', '.join(sorted(C2PA_MIME))} files")
    return mime


def c2pa_manifest(metadata: dict[str, str]) -> dict:
    """The manifest definition: made by talkinghead (c2pa.created by a trained model) and the
    container tags (synthetic, tool, model name, version and hash) as a talkinghead assertion."""
    return {
        "claim_generator_info": [{"name": "talkinghead", "version": __version__}],
        "title": "synthetic media made by talkinghead",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                 "softwareAgent": {"name": "talkinghead", "version": __version__}}]}},
            {"label": "org.talkinghead.provenance", "data": {k: v for k, v in metadata.items() if k.startswith(PREFIX)}},
        ],
    }


def sign_c2pa(path: str | os.PathLike, signing: C2paSigning, metadata: dict[str, str], *,
              mime: str | None = None) -> None:
    """Add a C2PA manifest (:func:`c2pa_manifest` of ``metadata``) signed by ``signing`` to the image
    or video at ``path``, rewriting it in place (through a temporary file beside it). ``mime``:
    the file's type when its extension does not say (default: by extension)."""
    signing.check()
    c2pa = _c2pa()
    p = Path(path)
    mime = mime or c2pa_mime(p)
    tmp = p.with_name(f".{p.name}.c2pa")
    try:
        info = c2pa.C2paSignerInfo(alg=signing.alg, sign_cert=Path(signing.cert).read_bytes(),
                                   private_key=Path(signing.key).read_bytes(), ta_url=None)
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(c2pa_manifest(metadata)) as builder, \
                open(p, "rb") as source, open(tmp, "w+b") as dest:
            builder.sign(signer, mime, source, dest)
        os.replace(tmp, p)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"{p}: C2PA signing failed ({exc}); check the key, the certificate chain "
                              f"(signing certificate first) and the algorithm ({signing.alg})") from exc
    finally:
        tmp.unlink(missing_ok=True)


def c2pa_status(path: str | os.PathLike) -> tuple[str, str | None]:
    """The C2PA state of a file: ("valid" | "invalid" | "absent" | "unchecked", detail). Valid means
    the manifest's signature and its hashes of the content check out (the signer is not looked up
    in a trust list); unchecked: the provenance extra is not installed."""
    try:
        import c2pa
    except ImportError:
        return "unchecked", f"c2pa-python is not installed ({PROVENANCE_EXTRA})"
    mime = C2PA_MIME.get(Path(path).suffix.lower())
    if mime is None:
        return "absent", "not a file type C2PA signs here"
    try:
        with open(path, "rb") as f, c2pa.Reader(mime, f) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError.ManifestNotFound:
        return "absent", None
    except c2pa.C2paError as exc:
        return "invalid", str(exc)
    if state in ("Valid", "Trusted"):
        return "valid", state
    failures = (results.get("activeManifest") or {}).get("failure") or []
    return "invalid", ", ".join(sorted({f.get("code", "?") for f in failures})) or state


@dataclass
class Verdict:
    """What ``talkinghead verify`` found in one file."""

    path: str
    found: bool = False
    confidence: float = 0.0
    model_id: int | None = None
    frames: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    synthetic_tag: bool = False
    c2pa: str = "absent"       # valid | invalid | absent | unchecked (see c2pa_status)
    c2pa_detail: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def verify(path: str | os.PathLike, max_frames: int = MAX_VERIFY_FRAMES) -> Verdict:
    """Look for the watermark in an image or video file (its first ``max_frames`` frames folded
    together) and read its container tags. Errors (missing, truncated, not media) go in ``error``."""
    import av

    from .watermark import detect

    p = Path(path)
    v = Verdict(str(p))
    if not p.is_file():
        v.error = f"{p}: no such file"
        return v
    frames = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{p}: no picture stream (not an image or a video)")
            v.metadata = {str(k): str(val) for k, val in container.metadata.items()}
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= max_frames:
                    break
    except TalkingHeadError as exc:
        v.error = str(exc)
        return v
    except (av.FFmpegError, OSError, ValueError) as exc:
        v.error = f"{p}: not a readable image or video ({exc})"
        return v
    if not frames:
        v.error = f"{p}: no frame could be decoded (truncated?)"
        return v
    d = detect(frames)
    v.found, v.confidence, v.model_id, v.frames = d.found, round(d.confidence, 2), d.model_id if d.found else None, len(frames)
    v.synthetic_tag = v.metadata.get(f"{PREFIX}synthetic") == "true"
    v.c2pa, v.c2pa_detail = c2pa_status(p)
    return v

"""Avatar: a person embedded once (identity vector), the reference shots a warp model reads, and what
paste-back needs.

File format ``talkinghead-avatar/2`` (an .npz): ``identity``, ``landmarks``, ``meta`` (JSON), and
optionally ``image`` + ``crop`` (paste-back) and ``ref_images`` uint8 [K,S,S,3] + ``ref_landmarks``
float32 [K,68,2] (the shots' crops and crop-normalised landmarks, for a ``warp`` package). Version-1
files (no references) still load; a warp model asks for the avatar to be made again.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .crop import Crop
from .errors import InputError, OutputExistsError, TalkingHeadError

AVATAR_FORMAT = "talkinghead-avatar/2"
READABLE_FORMATS = ("talkinghead-avatar/1", AVATAR_FORMAT)
MAX_REFERENCES = 32


class AvatarFileError(TalkingHeadError):
    """An avatar file that is missing, corrupt or made for another model."""


@dataclass
class Avatar:
    """An embedded person.

    Attributes:
        identity: float32 [D], the mean embedding of the shots (empty for a personalised model,
            whose identity is inside its generator).
        landmarks: float32 [68, 2], the source face's landmarks, crop-normalised (the shape that
            relative motion transfer keeps).
        model: the name of the model package that made it (checked when rendering).
        embedding_dim: D of that model.
        shots: how many images were embedded.
        image: the source image (uint8 [H, W, 3]) for paste-back, or None.
        crop: the source face's crop in ``image`` pixels, or None.
        ref_images: uint8 [K, S, S, 3] crops of the kept shots (warp packages), or None.
        ref_landmarks: float32 [K, 68, 2] their crop-normalised landmarks, or None.
    """

    identity: np.ndarray
    landmarks: np.ndarray
    model: str
    embedding_dim: int
    shots: int = 1
    image: np.ndarray | None = None
    crop: Crop | None = None
    ref_images: np.ndarray | None = None
    ref_landmarks: np.ndarray | None = None
    _reference_inputs: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def has_references(self) -> bool:
        return self.ref_images is not None and self.ref_landmarks is not None

    def reference_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """The generator inputs ``ref_images`` float32 [K,3,S,S] in [-1, 1] and ``ref_landmarks``
        [K,68,2], converted once and kept (the avatar's arrays are not to be changed afterwards)."""
        if not self.has_references:
            raise InputError("this avatar has no reference shots")
        if self._reference_inputs is None:
            images = np.ascontiguousarray(self.ref_images.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1.0
            self._reference_inputs = (images, np.ascontiguousarray(self.ref_landmarks, dtype=np.float32))
        return self._reference_inputs

    @property
    def can_paste(self) -> bool:
        return self.image is not None and self.crop is not None

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write a compressed .npz (a few hundred kB with the source image, bytes without)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
        meta = {"format": AVATAR_FORMAT, "model": self.model, "embedding_dim": self.embedding_dim,
                "shots": self.shots}
        arrays = {"identity": self.identity.astype(np.float32), "landmarks": self.landmarks.astype(np.float32),
                  "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
        if self.image is not None:
            arrays["image"] = self.image
        if self.crop is not None:
            arrays["crop"] = np.array([self.crop.cx, self.crop.cy, self.crop.size], np.float64)
        if self.has_references:
            arrays["ref_images"] = np.ascontiguousarray(self.ref_images, dtype=np.uint8)
            arrays["ref_landmarks"] = self.ref_landmarks.astype(np.float32)
        tmp = path.with_name(f".{path.name}.part.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Avatar":
        path = Path(path)
        if not path.is_file():
            raise AvatarFileError(f"avatar file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise AvatarFileError(f"{path} is not a talkinghead avatar file: {exc}") from exc
        if meta.get("format") not in READABLE_FORMATS:
            raise AvatarFileError(f"{path}: unknown avatar format {meta.get('format')!r} "
                                  f"(this talkinghead reads {', '.join(READABLE_FORMATS)})")
        avatar = cls(identity=arrays["identity"], landmarks=arrays["landmarks"], model=meta["model"],
                     embedding_dim=int(meta["embedding_dim"]), shots=int(meta.get("shots", 1)),
                     image=arrays.get("image"),
                     crop=Crop(*(float(v) for v in arrays["crop"])) if "crop" in arrays else None,
                     ref_images=arrays.get("ref_images"), ref_landmarks=arrays.get("ref_landmarks"))
        try:
            avatar.check()
        except InputError as exc:
            raise AvatarFileError(f"{path}: {exc}") from exc
        return avatar

    def check(self) -> None:
        """Shapes and finiteness; raises InputError."""
        if self.landmarks.shape != (68, 2) or not np.isfinite(self.landmarks).all():
            raise InputError("avatar landmarks must be finite float32 [68, 2]")
        if self.identity.ndim != 1 or not np.isfinite(self.identity).all():
            raise InputError("avatar identity must be a finite float32 vector")
        if (self.ref_images is None) != (self.ref_landmarks is None):
            raise InputError("avatar reference shots need both ref_images and ref_landmarks")
        if self.has_references:
            imgs, lms = self.ref_images, self.ref_landmarks
            if imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[3] != 3 or imgs.shape[1] != imgs.shape[2]:
                raise InputError(f"avatar ref_images must be uint8 [K, S, S, 3], got {imgs.dtype} {list(imgs.shape)}")
            if not 1 <= imgs.shape[0] <= MAX_REFERENCES:
                raise InputError(f"an avatar keeps 1 to {MAX_REFERENCES} reference shots, got {imgs.shape[0]}")
            if lms.shape != (imgs.shape[0], 68, 2) or not np.isfinite(lms).all():
                raise InputError(f"avatar ref_landmarks must be finite [{imgs.shape[0]}, 68, 2], got {list(lms.shape)}")

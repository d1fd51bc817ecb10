"""Avatar: a person embedded once (identity vector) plus what paste-back needs."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .crop import Crop
from .errors import InputError, OutputExistsError, TalkingHeadError

AVATAR_FORMAT = "talkinghead-avatar/1"


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
    """

    identity: np.ndarray
    landmarks: np.ndarray
    model: str
    embedding_dim: int
    shots: int = 1
    image: np.ndarray | None = None
    crop: Crop | None = None

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
        if meta.get("format") != AVATAR_FORMAT:
            raise AvatarFileError(f"{path}: unknown avatar format {meta.get('format')!r}")
        avatar = cls(identity=arrays["identity"], landmarks=arrays["landmarks"], model=meta["model"],
                     embedding_dim=int(meta["embedding_dim"]), shots=int(meta.get("shots", 1)),
                     image=arrays.get("image"),
                     crop=Crop(*(float(v) for v in arrays["crop"])) if "crop" in arrays else None)
        avatar.check()
        return avatar

    def check(self) -> None:
        """Shapes and finiteness; raises InputError."""
        if self.landmarks.shape != (68, 2) or not np.isfinite(self.landmarks).all():
            raise InputError("avatar landmarks must be finite float32 [68, 2]")
        if self.identity.ndim != 1 or not np.isfinite(self.identity).all():
            raise InputError("avatar identity must be a finite float32 vector")

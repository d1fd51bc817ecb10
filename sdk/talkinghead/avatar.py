"""Avatar: a person embedded once (identity vector), the reference shots a warp model reads, and what
paste-back needs.

File format ``talkinghead-avatar/2`` (an .npz): ``identity``, ``landmarks``, ``meta`` (JSON), and
optionally ``image`` + ``crop`` (paste-back) and ``ref_images`` uint8 [K,S,S,3] + ``ref_landmarks``
float32 [K,68,2] (the shots' crops and crop-normalised landmarks, for a ``warp`` package). Version-1
files (no references) still load; a warp model asks for the avatar to be made again.
"""
from __future__ import annotations

import json
import tokenize
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .crop import Crop, resize_image
from .errors import InputError, OutputExistsError, TalkingHeadError
from .filetypes import json_depth
from .limits import MAX_AVATAR_BYTES, MAX_AVATAR_EXPANDED_BYTES, MAX_NORMALISED, MAX_SHOTS

AVATAR_FORMAT = "talkinghead-avatar/2"
READABLE_FORMATS = ("talkinghead-avatar/1", AVATAR_FORMAT)


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

    def has_reference_inputs(self, resolution: int) -> bool:
        """True when the generator inputs at ``resolution`` are already made (see :meth:`reference_inputs`)."""
        return self._reference_inputs is not None and self._reference_inputs[0].shape[-1] == resolution

    def reference_inputs(self, resolution: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The generator inputs ``ref_images`` float32 [K,3,S,S] in [-1, 1] and ``ref_landmarks``
        [K,68,2], converted once and kept (the avatar's arrays are not to be changed afterwards).

        ``resolution``: S when it differs from the stored crops' side (an avatar made when the model
        kept its shots at another size): the crops are resampled to it (:func:`crop.resize_image`;
        the crop square is the same, so the landmarks hold)."""
        if not self.has_references:
            raise InputError("this avatar has no reference shots")
        side = self.ref_images.shape[1]
        want = side if resolution is None else int(resolution)
        if self._reference_inputs is None or self._reference_inputs[0].shape[-1] != want:
            crops = self.ref_images if want == side else np.stack([resize_image(c, want, want) for c in self.ref_images])
            images = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1.0
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
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        except BaseException:  # a full disk, Ctrl-C, SIGTERM: no partial file is left behind
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Avatar":
        path = Path(path)
        if not path.is_file():
            raise AvatarFileError(f"avatar file not found: {path}")
        _check_archive(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = bytes(data["meta"])
                if json_depth(raw) > 8:  # an avatar's meta is one flat object
                    raise ValueError("its meta nests too deep")
                meta = json.loads(raw.decode())
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError, SyntaxError, tokenize.TokenError, json.JSONDecodeError) as exc:  # numpy parses
            # an array's header with Python's tokenizer
            raise AvatarFileError(f"{path} is not a talkinghead avatar file: {exc}") from exc
        if not isinstance(meta, dict):
            raise AvatarFileError(f"{path}: its meta is not a JSON object")
        if meta.get("format") not in READABLE_FORMATS:
            raise AvatarFileError(f"{path}: unknown avatar format {meta.get('format')!r} "
                                  f"(this talkinghead reads {', '.join(READABLE_FORMATS)})")
        try:
            if "crop" in arrays and arrays["crop"].shape != (3,):
                raise InputError(f"crop must be 3 numbers, got shape {list(arrays['crop'].shape)}")
            if not isinstance(meta.get("model"), str):
                raise InputError("meta.model must be a string")
            avatar = cls(identity=arrays["identity"], landmarks=arrays["landmarks"], model=meta["model"],
                         embedding_dim=int(meta["embedding_dim"]), shots=int(meta.get("shots", 1)),
                         image=arrays.get("image"),
                         crop=Crop(*(float(v) for v in arrays["crop"])) if "crop" in arrays else None,
                         ref_images=arrays.get("ref_images"), ref_landmarks=arrays.get("ref_landmarks"))
            avatar.check()
        except (InputError, KeyError, TypeError, ValueError) as exc:
            raise AvatarFileError(f"{path}: {exc if isinstance(exc, InputError) else f'missing or wrong field {exc}'}") from exc
        return avatar

    def check(self) -> None:
        """Types, shapes, finiteness (as float32) and ranges of every array, however the avatar was
        made (loaded, or built by hand); raises InputError naming the first problem."""
        for name in ("identity", "landmarks"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                raise InputError(f"avatar {name} must be a numeric numpy array, got {type(value).__name__}")
        if self.landmarks.shape != (68, 2) or not _finite32(self.landmarks) \
                or np.abs(self.landmarks).max() > MAX_NORMALISED:
            raise InputError(f"avatar landmarks must be finite crop-normalised float32 [68, 2] "
                             f"(within +-{MAX_NORMALISED:g})")
        if self.identity.ndim != 1 or not _finite32(self.identity):
            raise InputError("avatar identity must be a vector finite in float32 (no NaN, inf or |x| > 3.4e38)")
        if self.image is not None:
            img = self.image
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 \
                    or min(img.shape[:2]) < 1:
                raise InputError("avatar image must be uint8 [H, W, 3]")
        if self.crop is not None and not (all(np.isfinite([self.crop.cx, self.crop.cy, self.crop.size]))
                                          and self.crop.size > 0):
            raise InputError(f"avatar crop must be finite with a positive size, got {self.crop}")
        if (self.ref_images is None) != (self.ref_landmarks is None):
            raise InputError("avatar reference shots need both ref_images and ref_landmarks")
        if self.has_references:
            imgs, lms = self.ref_images, self.ref_landmarks
            if imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[3] != 3 or imgs.shape[1] != imgs.shape[2]:
                raise InputError(f"avatar ref_images must be uint8 [K, S, S, 3], got {imgs.dtype} {list(imgs.shape)}")
            if not 1 <= imgs.shape[0] <= MAX_SHOTS:
                raise InputError(f"an avatar keeps 1 to {MAX_SHOTS} reference shots, got {imgs.shape[0]}")
            if lms.shape != (imgs.shape[0], 68, 2) or not _finite32(lms) or np.abs(lms).max() > MAX_NORMALISED:
                raise InputError(f"avatar ref_landmarks must be finite [{imgs.shape[0]}, 68, 2], got {list(lms.shape)}")


#: the arrays an avatar file may hold (each an .npy member of the .npz)
MEMBERS = ("identity", "landmarks", "meta", "image", "crop", "ref_images", "ref_landmarks")


def _check_archive(path: Path) -> None:
    """Bound an avatar file before anything in it is expanded: its size, its members (only the
    known arrays) and their expanded sizes (a few kB of zip can claim gigabytes)."""
    size = path.stat().st_size
    if size > MAX_AVATAR_BYTES:
        raise AvatarFileError(f"{path}: {size / 2**20:.0f} MiB is larger than an avatar file may be "
                              f"({MAX_AVATAR_BYTES >> 20} MiB)")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # np.load reads a file by its first bytes, zipfile by its last
            raise AvatarFileError(f"{path} is not a talkinghead avatar file (not an .npz archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            unknown = [i.filename for i in infos if i.filename.removesuffix(".npy") not in MEMBERS]
            if unknown:
                raise AvatarFileError(f"{path}: unknown members {unknown[:3]} (an avatar holds {', '.join(MEMBERS)})")
            expanded = sum(i.file_size for i in infos)
            if expanded > MAX_AVATAR_EXPANDED_BYTES:
                raise AvatarFileError(f"{path}: its arrays would expand to {expanded / 2**20:.0f} MiB "
                                      f"(at most {MAX_AVATAR_EXPANDED_BYTES >> 20} MiB)")
            for info in infos:  # numpy allocates what an array's header declares before reading it
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                    raise AvatarFileError(f"{path}: member {info.filename} is encrypted or compressed by a method "
                                          "numpy does not write (stored or deflate only)")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member, max_header_size=10000)
                    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                    if dtype.hasobject or declared > info.file_size:
                        raise AvatarFileError(f"{path}: member {info.filename} declares {list(shape)} {dtype} "
                                              f"({declared} bytes) in {info.file_size} bytes")
    except AvatarFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, ValueError, EOFError) as exc:
        raise AvatarFileError(f"{path} is not a talkinghead avatar file (not an .npz archive of arrays: {exc})") from exc


def _finite32(values: np.ndarray) -> bool:
    """Every value finite once stored as float32 (1e300 is finite in float64 and inf in float32)."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(values.astype(np.float32)).all())

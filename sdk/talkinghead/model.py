"""TalkingHeadModel: a loaded model package — embed shots once, then render frame after frame.

    model = talkinghead.load_model()                 # the bundled default package
    avatar = model.create_avatar(["me.jpg"])          # detect, crop, embed, average
    for frame in model.animate(avatar, "driver.mp4"):  # track, transfer motion, render, paste back
        ...
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Literal, Sequence

import numpy as np

from .avatar import Avatar
from .controls import Controls
from .crop import Crop, crop_from_landmarks, crops_from_landmarks, to_normalised, warp_to_crop
from .errors import InputError, ModelPackageError
from .images import as_rgb_array, read_image
from .limits import MAX_BATCH, MAX_RENDER_FRAMES, MAX_SHOTS, RENDER_CHUNK
from .motion import MotionTransfer, check_face_in_crop, check_landmarks
from .package import ModelPackage
from .pasteback import paste_back
from .references import select_references
from .engines import Backend, create_engine
from .sessions import SessionConfig
from .watermark import Marker, model_id

if TYPE_CHECKING:
    from .stream import Stream

log = logging.getLogger("talkinghead")

ImageLike = str | os.PathLike | np.ndarray
Coords = Literal["pixels", "normalised"]

DEFAULT_PACKAGE = Path(__file__).resolve().parent / "models" / "default"
DEFAULT_FPS = 25.0  # the smoother's frame rate for driving frames given in memory without fps


def to_model_input(crops: np.ndarray) -> np.ndarray:
    """uint8 [N, R, R, 3] -> float32 [N, 3, R, R] in [-1, 1]."""
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1.0


def from_model_output(images: np.ndarray) -> np.ndarray:
    """float32 [N, 3, R, R] in [-1, 1] -> uint8 [N, R, R, 3]."""
    x = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


@dataclass
class RenderStats:
    """Counters of one :meth:`TalkingHeadModel.animate` call (its :class:`Animation`'s ``stats``)."""

    frames: int = 0
    lost_frames: int = 0


class Animation(Iterator[np.ndarray]):
    """The frames of one ``animate`` call, with that call's own counters in ``stats``.

    Iterate it like any generator; ``stats`` is complete once it is exhausted. Each call gets its
    own object, so concurrent ``animate`` calls on one model never share counts.
    """

    def __init__(self, frames_of: "Callable[[RenderStats], Iterator[np.ndarray]]") -> None:
        self.stats = RenderStats()
        self._frames = frames_of(self.stats)

    def __iter__(self) -> "Animation":
        return self

    def __next__(self) -> np.ndarray:
        return next(self._frames)


class TalkingHeadModel:
    """A model package on onnxruntime. Create with :func:`talkinghead.load_model`."""

    def __init__(self, package: ModelPackage, config: SessionConfig | None = None,
                 backend: Backend = "onnxruntime", watermark: bool = True) -> None:
        self.package = package
        # Every frame this model returns carries the invisible mark of its package (talkinghead.watermark);
        # off only when asked (watermark=False): see docs/architecture.md, "Outputs marked synthetic".
        self.marker = Marker(model_id(package.name, package.version)) if watermark else None
        self.config = (config or SessionConfig()).validate()
        self.backend = backend
        self.engine = create_engine(package, self.config, backend)
        self.providers = self.engine.providers
        self.variant = self.engine.variant
        log.info("talkinghead: model %s (%s, generator %s) on %s via %s", package.name, package.kind, self.variant,
                 ", ".join(self.providers), backend)

    # -- properties ---------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.package.resolution

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def personalised(self) -> bool:
        return self.package.is_personalised

    @property
    def family(self) -> str:
        """``adain`` | ``warp`` (the generator family of the package)."""
        return self.package.family

    # -- avatars ------------------------------------------------------------------------------
    def create_avatar(self, images: ImageLike | Sequence[ImageLike] | None = None,
                      landmarks: Sequence[np.ndarray] | np.ndarray | None = None,
                      face_index: int = 0) -> Avatar:
        """Embed 1–32 shots of one person into an :class:`Avatar`.

        Args:
            images: paths or RGB uint8 arrays (one or a list). Optional for a personalised
                package; with one, the first image still serves paste-back.
            landmarks: per image [68, 2] in pixels; detected (dlib) when not given.
            face_index: which face when an image holds several (0: the largest).
        """
        shots = self._as_image_list(images)
        if not shots:
            if not self.personalised:
                raise InputError(f"create_avatar needs 1 to {MAX_SHOTS} images of the person")
            return self.default_avatar()
        if landmarks is not None:
            lms = list(landmarks) if not isinstance(landmarks, np.ndarray) or landmarks.ndim == 3 else [landmarks]
            if len(lms) != len(shots):
                raise InputError(f"{len(shots)} images but {len(lms)} landmark arrays")
            lms = [check_landmarks(lm, f"landmarks of image {i}", batched=False) for i, lm in enumerate(lms)]
        else:
            from .landmarks import detect_landmarks

            lms = [detect_landmarks(img, face_index, name=label).points for label, img in shots]
        crops = [crop_from_landmarks(lm, self.package.crop_config) for lm in lms]
        crop_images = np.stack([warp_to_crop(img, c, self.resolution) for (_, img), c in zip(shots, crops)])
        norm = np.stack([to_normalised(lm, c) for lm, c in zip(lms, crops)]).astype(np.float32)
        if self.personalised:
            identity = np.zeros(0, np.float32)
        else:
            identity = self.engine.embed(to_model_input(crop_images), norm).mean(axis=0).astype(np.float32)
        refs = self.package.references
        ref_images = ref_landmarks = None
        if refs is not None:
            keep = select_references(norm, refs.cap)
            if refs.resolution == self.resolution:
                ref_images = crop_images[keep]
            else:  # sharper references: resampled once from the photos, at their own resolution
                ref_images = np.stack([warp_to_crop(shots[i][1], crops[i], refs.resolution) for i in keep])
            ref_landmarks = norm[keep]
        return Avatar(identity=identity, landmarks=norm[0], model=self.name,
                      embedding_dim=self.package.embedding_dim, shots=len(shots),
                      image=shots[0][1], crop=crops[0], ref_images=ref_images, ref_landmarks=ref_landmarks)

    def default_avatar(self) -> Avatar:
        """The package's own avatar (the one `talkinghead demo` renders)."""
        path = self.package.default_avatar_path
        if path is None:
            raise ModelPackageError(f"package {self.name} has no default avatar")
        return Avatar.load(path)

    def _as_image_list(self, images: ImageLike | Sequence[ImageLike] | None) -> list[tuple[str, np.ndarray]]:
        if images is None:
            return []
        if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        items = list(images)
        if len(items) > MAX_SHOTS:
            raise InputError(f"{len(items)} shots given; at most {MAX_SHOTS} are supported")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                out.append((str(item), read_image(item)))
            else:
                out.append((f"image {i}", as_rgb_array(item, f"image {i}")))
        return out

    # -- rendering ----------------------------------------------------------------------------
    def _check_avatar(self, avatar: Avatar) -> None:
        """The avatar is whole (finite arrays of the right shapes, however it was made) and was made
        by this model: an identity from another embedder renders someone else."""
        if not isinstance(avatar, Avatar):
            raise InputError(f"expected an Avatar, got {type(avatar).__name__}")
        avatar.check()
        if avatar.model != self.name:
            raise InputError(f"this avatar was made by model {avatar.model!r}; this is model {self.name!r}: "
                             "create the avatar again with this model (model.create_avatar / talkinghead embed)")
        if not self.personalised and avatar.identity.shape != (self.package.embedding_dim,):
            raise InputError(f"avatar identity has {avatar.identity.shape[0]} dims; model {self.name} "
                             f"needs {self.package.embedding_dim} (made by another model?)")
        refs = self.package.references
        if refs is not None:
            if not avatar.has_references:
                raise InputError(f"model {self.name} (family 'warp') renders from the avatar's reference shots, "
                                 "and this avatar has none (made by an 'adain' model or an older talkinghead): "
                                 "create it again with this model")
            side = avatar.ref_images.shape[1]
            if avatar.ref_images.shape[0] > refs.cap:
                raise InputError(f"avatar has {avatar.ref_images.shape[0]} reference shots; model {self.name} "
                                 f"takes at most {refs.cap} (made by another model?)")
            if side != refs.resolution and not avatar.has_reference_inputs(refs.resolution):
                log.warning("avatar reference shots are %dpx; model %s keeps them at %dpx: resampled (an avatar "
                            "made again from the photos renders with more detail)", side, self.name, refs.resolution)

    def render(self, avatar: Avatar, landmarks: np.ndarray, coords: Coords = "normalised") -> np.ndarray:
        """Render face crops: landmarks [68, 2] or [B, 68, 2] -> uint8 [R, R, 3] or [B, R, R, 3].

        ``coords="pixels"``: landmarks of a driving frame in its pixels, each framed by the crop
        rule; ``"normalised"``: already crop-normalised (x, y in [-1, 1]).
        """
        self._check_avatar(avatar)
        lm = check_landmarks(landmarks)
        single = lm.ndim == 2
        batch = lm[None] if single else lm
        if not 1 <= batch.shape[0] <= MAX_RENDER_FRAMES:
            raise InputError(f"render takes 1 to {MAX_RENDER_FRAMES} frames of landmarks per call, got "
                             f"{batch.shape[0]}; call it in chunks (or use animate, which streams)")
        if coords == "pixels":
            crops = crops_from_landmarks(batch, self.package.crop_config)
            batch = to_normalised(batch, crops)
        elif coords != "normalised":
            raise InputError(f"coords must be 'pixels' or 'normalised', got {coords!r}")
        out = self._mark(self._render_crops(avatar, batch))
        return out[0] if single else out

    def _render_crops(self, avatar: Avatar, norm: np.ndarray) -> np.ndarray:
        """Unmarked uint8 crops [B, R, R, 3] (callers that paste them mark the final frame), the
        generator run ``RENDER_CHUNK`` frames at a time so that its working memory stays bounded."""
        norm = check_face_in_crop(norm.astype(np.float32, copy=False))
        r = self.resolution
        out = np.empty((norm.shape[0], r, r, 3), np.uint8)
        for start in range(0, norm.shape[0], RENDER_CHUNK):
            out[start:start + RENDER_CHUNK] = from_model_output(self._generate(avatar, norm[start:start + RENDER_CHUNK]))
        return out

    def _mark(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` [..., H, W, 3] with this model's watermark (unchanged when it is off)."""
        if self.marker is None:
            return frames
        if frames.ndim == 3:
            return self.marker.mark(frames)
        return np.stack([self.marker.mark(f) for f in frames])

    def _generate(self, avatar: Avatar, norm: np.ndarray) -> np.ndarray:
        if self.personalised:
            return self.engine.generate(norm, None)
        identity = np.broadcast_to(avatar.identity, (norm.shape[0], avatar.identity.shape[0]))
        refs = self.package.references
        references = avatar.reference_inputs(refs.resolution) if refs is not None else None
        return self.engine.generate(norm, identity, references)

    def stream(self, avatar: Avatar, *, mode: Literal["relative", "absolute"] = "relative",
               output: Literal["crop", "paste", "driver"] = "crop", controls: "Controls | None" = None,
               smoothing: bool = True, fps: float = 25.0) -> "Stream":
        """A live stream of this avatar: push frames or landmarks one at a time (talkinghead.stream).

        It keeps the tracking, the motion reference, the smoothing and the controls between calls;
        ``stream.live()`` adds a tracking and a rendering thread with bounded latency (newest input wins).
        """
        from .stream import Stream

        return Stream(self, avatar, mode=mode, output=output, controls=controls, smoothing=smoothing, fps=fps)

    def animate(self, avatar: Avatar, driving: str | os.PathLike | Iterable[np.ndarray], *,
                mode: Literal["relative", "absolute"] = "relative", output: Literal["crop", "paste"] = "paste",
                batch_size: int = 1, smoothing: bool = True,
                tracker_config: "object | None" = None, fps: float | None = None) -> Animation:
        """Frames of the avatar driven by a video file, a sequence of frames or of landmarks.

        Returns an :class:`Animation`: iterate it for the RGB uint8 frames; its ``stats`` counts
        this call's frames and the driving frames where the face was lost.

        Args:
            driving: a video path; an iterable of RGB frames (uint8 [H, W, 3]); or an iterable /
                array of driver landmarks in pixels ([68, 2] each, e.g. from your own tracker).
            mode: "relative" (the avatar keeps its face shape) or "absolute".
            output: "paste" (into the avatar's source image; needs one) or "crop".
            batch_size: frames per generator call.
            smoothing: One Euro smoothing of tracked landmarks (video / frames only).
            fps: the driver's frame rate, for the smoother's time steps: a video's own rate by
                default, 25 for frames given in memory.
        """
        self._check_avatar(avatar)
        if output not in ("crop", "paste"):
            raise InputError(f"output must be 'crop' or 'paste', got {output!r}")
        if output == "paste" and not avatar.can_paste:
            raise InputError("this avatar has no source image to paste into; use output='crop'")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
            raise InputError(f"batch_size must be an integer in 1..{MAX_BATCH}, got {batch_size!r}")
        if fps is not None and not (math.isfinite(fps) and 0 < fps <= 1000):
            raise InputError(f"fps must be in (0, 1000], got {fps}")
        transfer = MotionTransfer(avatar.landmarks, mode, self.package.crop_config)

        def frames(stats: RenderStats) -> Iterator[np.ndarray]:
            pending: list[np.ndarray] = []
            for driver_px in self._driver_landmarks(driving, smoothing, tracker_config, fps, stats):
                pending.append(transfer(driver_px))
                if len(pending) == batch_size:
                    yield from self._emit(avatar, pending, output, stats)
                    pending = []
            if pending:
                yield from self._emit(avatar, pending, output, stats)

        return Animation(frames)

    def _emit(self, avatar: Avatar, pending: list[np.ndarray], output: str, stats: RenderStats) -> Iterator[np.ndarray]:
        crops = self._render_crops(avatar, np.stack(pending))
        for crop_image in crops:
            stats.frames += 1
            yield self._mark(paste_back(avatar.image, crop_image, avatar.crop) if output == "paste" else crop_image)

    def _driver_landmarks(self, driving, smoothing: bool, tracker_config, fps: float | None,
                          stats: RenderStats) -> Iterator[np.ndarray]:
        if isinstance(driving, (str, os.PathLike)):
            from .video import iter_frames, probe

            rate = fps or probe(driving).fps or DEFAULT_FPS
            yield from self._track(iter_frames(driving), smoothing, tracker_config, str(driving), rate, stats)
            return
        if isinstance(driving, np.ndarray) and driving.ndim == 3 and driving.shape[1:] == (68, 2):
            yield from check_landmarks(driving, "driver landmarks", batched=True)
            return
        it = iter(driving)
        first = next(it, None)
        if first is None:
            raise InputError("the driving sequence is empty")
        arr = np.asarray(first)
        if arr.shape == (68, 2):
            yield check_landmarks(arr, "driver landmarks of frame 0", batched=False)
            for i, lm in enumerate(it, 1):
                yield check_landmarks(lm, f"driver landmarks of frame {i}", batched=False)
        else:
            def frames():
                yield arr
                yield from it
            yield from self._track(frames(), smoothing, tracker_config, "the driving frames", fps or DEFAULT_FPS, stats)

    def _track(self, frames: Iterable[np.ndarray], smoothing: bool, tracker_config, source: str, fps: float,
               stats: RenderStats) -> Iterator[np.ndarray]:
        """Landmarks per frame; lost frames keep the last good landmarks (counted in stats)."""
        from .errors import NoFaceError
        from .landmarks.tracker import FaceTracker, TrackerConfig

        tracker = FaceTracker(config=tracker_config or TrackerConfig(smoothing=smoothing), fps=fps)
        last: np.ndarray | None = None
        leading = 0  # frames before the first face: they get the first face's landmarks
        for frame in frames:
            result = tracker.update(frame)
            if result.ok:
                last = result.smoothed
            elif last is None:
                leading += 1
                continue
            else:
                stats.lost_frames += 1
            for _ in range(leading):
                yield last
            stats.lost_frames += leading
            leading = 0
            yield last
        if last is None:
            raise NoFaceError(f"no face found in any of the {leading} frame(s) of {source}"
                              if leading else f"no frames in {source}")
        if stats.lost_frames:  # the caller reports it (stats); the log keeps a record
            log.info("face lost in %d frame(s) of %s; kept the last good landmarks there", stats.lost_frames, source)


def load_model(path: str | os.PathLike | None = None, providers="auto", *, intra_op_threads: int = 0,
               graph_optimization: str = "all", variant: str = "auto", backend: Backend = "onnxruntime",
               watermark: bool = True, **session_options) -> TalkingHeadModel:
    """Load a model package folder (the bundled default when ``path`` is None).

    Args:
        path: the package folder (manifest.json, graphs).
        providers: "auto" (CUDA when it works, else CPU), "cpu", "cuda" or a list in priority order.
        intra_op_threads: threads per operator (0: all cores).
        graph_optimization: onnxruntime graph optimisation level.
        variant: generator variant: "auto", "fp32", "int8" or "fp16".
        backend: "onnxruntime" (Python API) or "native" (the C++ core, built by bindings/build.sh).
        watermark: mark every returned frame invisibly as this model's output (default; False
            only where the frames are marked later or never leave the program).
        **session_options: further :class:`SessionConfig` fields, e.g. ``allow_spinning=False``
            (threads sleep between frames: less idle CPU, slower frames) or ``enable_mem_arena``.
    """
    folder = Path(path) if path is not None else DEFAULT_PACKAGE
    if path is None and not (folder / "manifest.json").is_file():
        raise ModelPackageError(f"the bundled default model is missing from {folder}; reinstall talkinghead "
                                "or pass a model package folder")
    config = SessionConfig(providers=providers, intra_op_threads=intra_op_threads,
                           graph_optimization=graph_optimization, variant=variant, **session_options)
    return TalkingHeadModel(ModelPackage.load(folder), config, backend, watermark=watermark)

"""Video decode and encode through PyAV (FFmpeg bundled in its wheels).

- :func:`probe` reads a clip's size, rate, frame count and whether it has audio.
- :func:`iter_frames` yields RGB ``uint8 [H, W, 3]`` frames (threaded decoding).
- :class:`VideoWriter` writes H.264 mp4 atomically (temp file in the same folder, renamed at
  close; removed on error) and can carry the audio of a source clip into the output.

Every failure on a clip raises :class:`~talkinghead.errors.VideoError` naming the file (and the
frame index where decoding broke).
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError, OutputExistsError, VideoError
from .filetypes import check_named_type, family, sniff
from .limits import MAX_VIDEO_PIXELS

__all__ = ["VideoInfo", "probe", "iter_frames", "VideoWriter"]

log = logging.getLogger(__name__)


def _av():
    import av  # core dependency; imported lazily to keep `import talkinghead` light

    return av


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a clip.

    ``frame_count`` is the container's count when it has one, otherwise an estimate from the
    duration and rate (MPEG-PS files such as GRID's .mpg carry none).
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    has_audio: bool
    codec: str
    audio_codec: str | None = None


def _open_input(path: Path, need_video: bool = True):
    """Open a clip after checking what it is: a still image is refused whatever its name (FFmpeg
    would play it as a one-frame video), and so is a frame larger than ``MAX_VIDEO_PIXELS``."""
    av = _av()
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a file")
    with open(path, "rb") as f:
        kind = sniff(f.read(64))
    error, warning = check_named_type(path, kind)
    if error or family(kind) == "image":
        raise VideoError(f"{path}: {error or f'a still image ({kind.upper()}), not a video'}")
    if warning:
        log.warning("%s: %s", path, warning)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path}: cannot open as a video ({exc})") from exc
    if need_video and not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    if container.streams.video:
        ctx = container.streams.video[0].codec_context
        if ctx.width * ctx.height > MAX_VIDEO_PIXELS:
            container.close()
            raise VideoError(f"{path}: {ctx.width}x{ctx.height} frames are larger than a video frame may be "
                             f"({MAX_VIDEO_PIXELS / 1e6:.1f} MP, 8K UHD); scale it down")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a clip's size, frame rate, frame count (or an estimate) and audio presence."""
    p = Path(path)
    with _open_input(p) as container:
        v = container.streams.video[0]
        rate = v.average_rate or v.base_rate or v.guessed_rate
        fps = float(rate) if rate else 0.0
        if v.duration is not None and v.time_base is not None:
            duration = float(v.duration * v.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frames = int(v.frames or 0)
        if frames <= 0 and fps > 0:
            frames = int(round(duration * fps))
        audio = container.streams.audio
        return VideoInfo(
            path=str(p), width=int(v.width), height=int(v.height), fps=fps,
            frame_count=frames, duration=duration, has_audio=bool(audio),
            codec=v.codec_context.name,
            audio_codec=audio[0].codec_context.name if audio else None)


def iter_frames(path: str | os.PathLike, *, limit: int | None = None,
                threads: int = 0) -> Iterator[np.ndarray]:
    """Yield the frames of a clip as RGB ``uint8 [H, W, 3]`` arrays, in display order.

    Args:
        path: any file FFmpeg demuxes (mp4, mov, mkv, mpg, ...).
        limit: stop after this many frames (None: all).
        threads: decoder threads (0: FFmpeg's choice).

    Raises:
        VideoError: missing, unreadable or corrupt file, or no decodable frame; names the file
            and the index of the frame where decoding broke.
    """
    av = _av()
    p = Path(path)
    if limit is not None and limit <= 0:
        return
    container = _open_input(p)
    index = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = int(threads)
        declared = int(stream.frames or 0)
        packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                for frame in packet.decode():
                    yield frame.to_ndarray(format="rgb24")
                    index += 1
                    if limit is not None and index >= limit:
                        return
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"{p}: decoding failed at frame {index} ({exc})") from exc
        if index == 0:
            raise VideoError(f"{p}: no decodable video frames")
        if declared and packets < declared:
            raise VideoError(f"{p}: truncated: decoding stopped at frame {index}; the container "
                             f"lists {declared} frames but holds {packets}")
    finally:
        container.close()


_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class VideoWriter:
    """Write RGB frames to an H.264 (yuv420p) video, atomically.

    Frames go to a temporary file next to ``path``; :meth:`close` renames it into place, and an
    exception inside a ``with`` block (or :meth:`abort`) removes it. Odd widths or heights are
    padded by one edge-replicated pixel (H.264 4:2:0 needs even sizes).

    Args:
        path: output file (.mp4 by default; .mov and .mkv also work).
        fps: frame rate (float, e.g. 29.97, is kept as an exact fraction where possible).
        overwrite: replace an existing ``path``; otherwise :class:`OutputExistsError`.
        audio_from: a clip (or audio file) whose first audio stream is carried into the output
            (copied when it is AAC, re-encoded to AAC otherwise), cut at the end of the video. No
            audio stream: a warning, and the output is silent.
        crf: x264 constant rate factor (lower: better, bigger).
        preset: x264 preset.
        metadata: container tags (key -> text), e.g. talkinghead.provenance.tags(model).
        c2pa: a talkinghead.provenance.C2paSigning: the finished file gets a C2PA manifest signed with
            it (the ``provenance`` extra; .mp4, .m4v and .mov only).

    Example::

        with VideoWriter("out.mp4", fps=25, audio_from="driving.mp4") as w:
            for frame in frames:
                w.write(frame)
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, overwrite: bool = False,
                 audio_from: str | os.PathLike | None = None, crf: int = 18,
                 preset: str = "medium", metadata: dict[str, str] | None = None, c2pa=None) -> None:
        self.path = Path(path)
        self.metadata = dict(metadata or {})
        self.c2pa = c2pa
        if not (isinstance(fps, numbers.Real) and math.isfinite(float(fps)) and float(fps) > 0):
            raise InputError(f"fps must be a finite number > 0, got {fps!r}")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path} exists; pass overwrite=True to replace it")
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path.parent}: output folder does not exist")
        self.rate = fps if isinstance(fps, Fraction) else \
            Fraction(float(fps)).limit_denominator(1001)
        self.overwrite = overwrite
        self.crf = int(crf)
        self.preset = preset
        self.audio_from = Path(audio_from) if audio_from is not None else None
        if self.audio_from is not None and not self.audio_from.is_file():
            raise VideoError(f"{self.audio_from}: no such file (asked for as the audio source)")
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.part"
                                        f"{self.path.suffix or '.mp4'}")
        self._format = _FORMATS.get(self.path.suffix.lower(), "mp4")
        if c2pa is not None:  # fail before any frame is rendered
            from .provenance import c2pa_mime

            c2pa.check()
            c2pa_mime(self._tmp)
        self._container = None
        self._vstream = None
        self._size: tuple[int, int] | None = None
        self._frames = 0
        self._audio: _AudioCarrier | None = None
        self._closed = False

    @property
    def frames_written(self) -> int:
        """Number of frames written so far."""
        return self._frames

    def _start(self, height: int, width: int) -> None:
        av = _av()
        # use_metadata_tags: the container keeps any key (talkinghead's provenance tags), not only iTunes ones
        options = {"movflags": "+faststart+use_metadata_tags"} if self._format in ("mp4", "mov") else {}
        self._container = av.open(str(self._tmp), mode="w", format=self._format,
                                  options=options)
        self._container.metadata.update(self.metadata)
        s = self._container.add_stream("libx264", rate=self.rate)
        s.width, s.height = width + width % 2, height + height % 2
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = 1 / self.rate
        s.options = {"crf": str(self.crf), "preset": self.preset}
        self._vstream = s
        self._size = (height, width)
        if self.audio_from is not None:
            self._audio = _AudioCarrier.open(self.audio_from, self._container)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB ``uint8 [H, W, 3]`` frame; every frame must have the first's size."""
        from .images import as_rgb_array

        if self._closed:
            raise VideoError(f"{self.path}: writer is closed")
        img = as_rgb_array(frame, "frame")
        h, w = img.shape[:2]
        try:
            if self._container is None:
                self._start(h, w)
            elif (h, w) != self._size:
                raise InputError(f"frame {self._frames} is {w}x{h}, the video is "
                                 f"{self._size[1]}x{self._size[0]}")
            if h % 2 or w % 2:
                img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            av = _av()
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = self._frames
            vf.time_base = 1 / self.rate
            for packet in self._vstream.encode(vf):
                self._container.mux(packet)
            self._frames += 1
            if self._audio is not None:
                self._audio.mux_until(float(self._frames / self.rate))
        except Exception:
            self.abort()
            raise

    def close(self) -> None:
        """Flush encoders, finish the file and move it to ``path``."""
        if self._closed:
            return
        try:
            if self._container is None:
                raise VideoError(f"{self.path}: no frames were written")
            for packet in self._vstream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.finish(float(self._frames / self.rate))
                self._audio = None
            self._container.close()
            self._container = None
            if self.c2pa is not None:
                from .provenance import sign_c2pa

                sign_c2pa(self._tmp, self.c2pa, self.metadata)
            if self.path.exists() and not self.overwrite:
                raise OutputExistsError(f"{self.path} appeared while writing; not replaced")
            os.replace(self._tmp, self.path)
            self._closed = True
        except Exception:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop writing and remove the temporary file; ``path`` is left untouched."""
        self._closed = True
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - already failing; the temp file goes anyway
                pass
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AudioCarrier:
    """Moves the audio of a source clip into an output container, in step with the video."""

    def __init__(self, source: Path, src, in_stream, out_container, out_stream, transcode: bool):
        self.source = source
        self.src = src
        self.in_stream = in_stream
        self.out = out_container
        self.out_stream = out_stream
        self.transcode = transcode
        self.packets = src.demux(in_stream)
        self.resampler = None
        self.done = False
        self.pending = None
        self.next_pts = 0
        # The output video starts at 0: shift audio by the source video's start time.
        v = src.streams.video[0] if src.streams.video else None
        start = float(v.start_time * v.time_base) if v is not None and v.start_time else 0.0
        self.shift = int(round(start / in_stream.time_base)) if in_stream.time_base else 0
        if transcode:
            av = _av()
            self.resampler = av.AudioResampler(format="fltp", layout=out_stream.layout,
                                               rate=out_stream.rate, frame_size=1024)

    @classmethod
    def open(cls, source: Path, out_container) -> "_AudioCarrier | None":
        src = _open_input(source, need_video=False)
        if not src.streams.audio:
            log.warning("%s has no audio stream; the output will be silent", source)
            src.close()
            return None
        a = src.streams.audio[0]
        if a.codec_context.name == "aac":
            out = out_container.add_stream_from_template(a)
            return cls(source, src, a, out_container, out, transcode=False)
        rate = a.codec_context.sample_rate or 48000
        out = out_container.add_stream("aac", rate=rate)
        out.layout = "mono" if a.codec_context.layout.nb_channels == 1 else "stereo"
        return cls(source, src, a, out_container, out, transcode=True)

    def _encode(self, frame) -> None:
        for rf in self.resampler.resample(frame):
            if rf is not None:
                rf.pts = self.next_pts
                self.next_pts += rf.samples
                for packet in self.out_stream.encode(rf):
                    self.out.mux(packet)

    def _next(self):
        """The next usable source packet (timestamps shifted), or None at the end."""
        av = _av()
        while not self.done:
            try:
                packet = next(self.packets)
            except StopIteration:
                self.done = True
                return None
            except av.FFmpegError as exc:
                raise VideoError(f"{self.source}: reading audio failed ({exc})") from exc
            if packet.dts is None or packet.pts is None:
                continue
            packet.pts -= self.shift
            packet.dts -= self.shift
            if packet.pts < 0 and not self.transcode:
                continue
            return packet
        return None

    def mux_until(self, t_end: float) -> None:
        """Mux source audio packets that start before ``t_end`` seconds."""
        while True:
            if self.pending is None:
                self.pending = self._next()
                if self.pending is None:
                    return
            packet = self.pending
            if float(packet.pts * packet.time_base) >= t_end:
                return
            self.pending = None
            if self.transcode:
                for frame in packet.decode():
                    self._encode(frame)
            else:
                packet.stream = self.out_stream
                self.out.mux(packet)

    def finish(self, t_end: float) -> None:
        """Mux what remains up to ``t_end``, flush the encoder and close the source."""
        self.mux_until(t_end)
        if self.transcode:
            self._encode(None)
            for packet in self.out_stream.encode(None):
                self.out.mux(packet)
        self.close()

    def close(self) -> None:
        if self.src is not None:
            self.src.close()
            self.src = None

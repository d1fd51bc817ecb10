"""The `talkinghead` command: animate, demo, embed, live, serve, verify, info.

Exit codes: 0 success, 2 a problem with the user's input (one line on stderr), 1 an internal
failure, 130 / 143 after Ctrl-C / SIGTERM (an output being written is removed, never left partial). ``--verbose`` shows tracebacks and debug logs; ``--quiet`` hides progress.

Before any work: numeric options are range-checked (:data:`LIMITS`; ``--threads`` above the CPU
count is lowered to it with a warning), and an output that is one of the command's inputs (the
same file by path, symlink or hard link: ``--source``, ``--driving``, ``--avatar``, a landmarks
file, a file of the model package) is refused, ``--overwrite`` or not.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from . import __version__
from .errors import InputError, OutputExistsError, TalkingHeadError
from .limits import cores_if_over

log = logging.getLogger("talkinghead")

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2
EXIT_NOT_FOUND = 3  # `verify`: a file without the watermark
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so that every ``with`` block unwinds (a video
    being written removes its temporary file) before the command exits with 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()

#: option -> (lowest, highest, lowest allowed itself): the accepted range of each numeric option.
LIMITS: dict[str, tuple[float, float, bool]] = {
    "fps": (0.0, 240.0, False),      # (0, 240]
    "seconds": (0.0, 600.0, False),  # (0, 600]
    "batch": (1, 64, True),          # 1..64
}

#: argument names whose values are input files (the output must be none of them).
INPUT_OPTIONS = ("source", "driving", "avatar", "landmarks")


def check_numbers(args: argparse.Namespace) -> None:
    """Range-check the numeric options ``args`` has (``InputError`` naming the option) and lower
    ``--threads`` to the CPU count, with a warning."""
    for name, (low, high, closed) in LIMITS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        flag = f"--{name}"
        if not math.isfinite(value) or not (low <= value if closed else low < value) or value > high:
            span = f"{low:g}..{high:g}" if closed else f"({low:g}, {high:g}]"
            kind = "an integer" if isinstance(value, int) else "a finite number"
            raise InputError(f"{flag} must be {kind} in {span}, got {value:g}")
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 0:
            raise InputError(f"--threads must be >= 0 (0: all cores), got {threads}")
        cores = cores_if_over(threads)
        if cores is not None:
            print(f"warning: --threads {threads} is more than this machine's {cores} CPU core(s); using {cores}",
                  file=sys.stderr)
            args.threads = cores


def _input_files(args: argparse.Namespace) -> list[Path]:
    """The files a command reads: its input options, then the model package's files."""
    files: list[Path] = []
    for name in INPUT_OPTIONS:
        value = getattr(args, name, None)
        if value:
            files += [Path(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if hasattr(args, "model"):
        from .model import DEFAULT_PACKAGE

        folder = Path(args.model) if args.model else DEFAULT_PACKAGE
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.is_file())
    return files


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:  # one of them does not exist
        return False


def _check_output(path: Path, overwrite: bool, inputs: list[Path] = ()) -> None:
    """Fail before any work when the output is one of the ``inputs``, exists (without --overwrite) or
    cannot be written."""
    for source in inputs:
        if _same_file(path, source):
            raise InputError(f"the output {path} is the input {source}; write to another file "
                             "(refused even with --overwrite)")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name such as out.mp4")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {path}: folder {parent} is not writable")


def _load(args, **session_options):
    from .model import load_model

    return load_model(args.model, providers=args.provider, intra_op_threads=args.threads, variant=args.variant,
                      watermark=not getattr(args, "no_watermark", False), **session_options)


def _signing(args):
    """The C2PA signing identity of --c2pa-key/--c2pa-cert/--c2pa-alg (checked now, before any
    rendering), or None when neither is given."""
    from .provenance import C2paSigning

    key, cert = getattr(args, "c2pa_key", None), getattr(args, "c2pa_cert", None)
    if key is None and cert is None:
        return None
    if key is None or cert is None:
        raise InputError("C2PA signing needs both --c2pa-key and --c2pa-cert")
    signing = C2paSigning(Path(key), Path(cert), args.c2pa_alg)
    signing.check()
    return signing


def _tags(model) -> dict[str, str]:
    from .provenance import tags

    return tags(model)


def cmd_animate(args) -> int:
    from .avatar import Avatar
    from .progress import Progress
    from .video import VideoWriter, probe

    out = Path(args.output)
    _check_output(out, args.overwrite, _input_files(args))
    signing = _signing(args)
    info = probe(args.driving)
    model = _load(args)
    if args.avatar:
        avatar = Avatar.load(args.avatar)
    else:
        if not args.source:
            raise InputError("give --source IMG [IMG ...] (or --avatar FILE)")
        avatar = model.create_avatar(args.source, face_index=args.face)
    output = "crop" if args.crop_only or not avatar.can_paste else "paste"
    fps = args.fps or info.fps
    frames = model.animate(avatar, args.driving, mode=args.mode, output=output, batch_size=args.batch,
                           fps=info.fps or None)
    with VideoWriter(out, fps=fps, overwrite=args.overwrite, audio_from=args.driving, metadata=_tags(model),
                     c2pa=signing) as writer, \
            Progress("rendering", info.frame_count, enabled=not args.quiet) as progress:
        for frame in frames:
            writer.write(frame)
            progress.update()
    if frames.stats.lost_frames:
        print(f"warning: the face was lost in {frames.stats.lost_frames} driving frame(s); "
              "they reuse the last good landmarks", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {out} ({frames.stats.frames} frames, {fps:g} fps, {progress.fps:.1f} frames/s)")
    return EXIT_OK


def cmd_demo(args) -> int:
    from .performance import PerformanceConfig, generate_performance
    from .progress import Progress
    from .video import VideoWriter

    out = Path(args.output)
    _check_output(out, args.overwrite, _input_files(args))
    signing = _signing(args)
    model = _load(args)
    avatar = model.default_avatar()
    track = generate_performance(avatar.landmarks, args.seconds, args.fps, PerformanceConfig(seed=args.seed))
    with VideoWriter(out, fps=args.fps, overwrite=args.overwrite, metadata=_tags(model), c2pa=signing) as writer, \
            Progress("rendering demo", len(track), enabled=not args.quiet) as progress:
        for start in range(0, len(track), args.batch):
            for frame in model.render(avatar, track[start:start + args.batch], coords="normalised"):
                writer.write(frame)
                progress.update()
    if not args.quiet:
        print(f"wrote {out} ({len(track)} frames at {args.fps:g} fps, model {model.name}, "
              f"{', '.join(model.providers)})")
    return EXIT_OK


def cmd_embed(args) -> int:
    out = Path(args.output)
    _check_output(out, args.overwrite, _input_files(args))
    model = _load(args)
    avatar = model.create_avatar(args.source, face_index=args.face)
    avatar.save(out, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {out} ({avatar.shots} shot(s), model {model.name})")
    return EXIT_OK


def cmd_live(args) -> int:
    from .avatar import Avatar
    from .controls import Controls
    from .live import (Recording, Window, camera_frames, check_source, clip_frames, require_pyvirtualcam, run_live,
                       virtual_camera)

    check_source(args.camera, args.driving)
    if args.virtual_camera:
        require_pyvirtualcam()
    signing = None
    if args.output:
        out = Path(args.output)
        _check_output(out, args.overwrite, _input_files(args))
        signing = _signing(args)
    controls = Controls(eye_open=args.eye_open, mouth_open=args.mouth_open, smile=args.smile, yaw=args.yaw,
                        pitch=args.pitch, roll=args.roll, expression_only=args.expression_only).validate()
    window = Window() if args.window else None  # fail on a missing display before loading anything
    frames = camera_frames(args.camera) if args.camera is not None else clip_frames(args.driving, args.realtime)
    # Live, ONNX Runtime's threads must not spin between frames: capture and tracking share the cores.
    model = _load(args, allow_spinning=False)
    if args.avatar:
        avatar = Avatar.load(args.avatar)
    elif args.source:
        avatar = model.create_avatar(args.source, face_index=args.face)
    else:
        raise InputError("give --source IMG [IMG ...] or --avatar FILE")
    output = "crop" if args.crop_only or not avatar.can_paste else "paste"
    stream = model.stream(avatar, mode=args.mode, output=output, controls=controls)
    sinks, recording, cam = [], None, None
    fps = args.fps or 25.0
    if args.output:
        recording = Recording(out, fps, args.overwrite, _tags(model), c2pa=signing)
        sinks.append(recording.add)
    if args.virtual_camera:
        size = (model.resolution, model.resolution) if output == "crop" else avatar.image.shape[1::-1]
        cam = virtual_camera(size[0], size[1], fps)
        sinks.append(lambda frame, t: cam.send(frame))
    if window is not None:
        sinks.append(lambda frame, t: window.show(frame))
    ok = False
    try:
        report = run_live(stream, frames, sinks, status=None if args.quiet else lambda line: print(line, file=sys.stderr),
                          max_seconds=args.seconds)
        ok = True
    finally:
        if recording is not None:
            recording.close(ok)
        if cam is not None:
            cam.close()
        if window is not None:
            window.close()
    if not args.quiet:
        p50 = f"{report.latency_p50_ms:.0f}" if report.latency_p50_ms is not None else "-"
        p95 = f"{report.latency_p95_ms:.0f}" if report.latency_p95_ms is not None else "-"
        print(f"live: {report.rendered} frames rendered in {report.seconds:.1f} s ({report.fps:.1f} fps), "
              f"{report.dropped} dropped, {report.failed} failed of {report.pushed}; latency p50 {p50} ms, p95 {p95} ms"
              + (f"; wrote {out}" if args.output else ""))
    return EXIT_OK


def cmd_serve(args) -> int:
    from .errors import MissingDependencyError

    try:
        import uvicorn

        from .web.app import create_app
    except ImportError:
        raise MissingDependencyError("talkinghead serve needs the web extra: pip install 'talkinghead[web]'") from None
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be in 1..65535, got {args.port}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: other machines on the network can reach this server and use its "
              "CPU; it has no authentication (the default, 127.0.0.1, is this machine only)", file=sys.stderr)
    app = create_app(_load(args))
    print(f"talkinghead serve: http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def cmd_verify(args) -> int:
    import json

    from .provenance import verify

    verdicts = [verify(f) for f in args.files]
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=1))
    else:
        for v in verdicts:
            if v.error:
                print(f"{v.path}: error: {v.error}")
                continue
            mark = (f"watermark FOUND (confidence {v.confidence:.1f}, model id {v.model_id})" if v.found
                    else f"no watermark (confidence {v.confidence:.1f})")
            tag = "tagged synthetic" if v.synthetic_tag else "no synthetic tag"
            model = v.metadata.get("talkinghead_model")
            c2pa = f"C2PA {v.c2pa}" + (f" ({v.c2pa_detail})" if v.c2pa in ("invalid", "unchecked") else "")
            print(f"{v.path}: {mark}; {tag}" + (f" (tool {v.metadata.get('talkinghead_tool')}, model {model})" if model else "")
                  + f"; {c2pa}; {v.frames} frame(s) checked")
    if any(v.error for v in verdicts):
        return EXIT_USER
    return EXIT_OK if all(v.found for v in verdicts) else EXIT_NOT_FOUND


def cmd_info(args) -> int:
    import onnxruntime as ort

    from .package import ModelPackage
    from .providers import available_providers
    from .model import DEFAULT_PACKAGE

    print(f"talkinghead {__version__}")
    print(f"onnxruntime {ort.__version__}; providers available: {', '.join(available_providers())}")
    folder = Path(args.model) if args.model else DEFAULT_PACKAGE
    pkg = ModelPackage.load(folder)
    print(f"model {pkg.name}: size {pkg.size}, {pkg.kind}, {pkg.resolution}x{pkg.resolution}, "
          f"identity D={pkg.embedding_dim}, version {pkg.version}")
    print(f"  folder {pkg.folder}")
    for role in ("embedder", "generator"):
        if pkg.has_graph(role):
            path = pkg.graph_path(role)
            print(f"  {role}: {path.name} ({path.stat().st_size / 2**20:.1f} MiB)")
    for name, v in pkg.variants.items():
        print(f"  variant {name}: {v.file} ({(pkg.folder / v.file).stat().st_size / 2**20:.1f} MiB), "
              f"error vs fp32 {v.error}")
    if pkg.default_avatar_path is not None:
        print(f"  default avatar: {pkg.default_avatar_path.name}")
    return EXIT_OK


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model package folder (default: the bundled model)")
    p.add_argument("--provider", default="auto", help="auto, cpu, cuda, or an onnxruntime provider name")
    p.add_argument("--variant", default="auto", choices=["auto", "fp32", "int8", "fp16"],
                   help="generator variant (default auto: fp16 on CUDA, fp32 on CPU)")
    p.add_argument("--threads", type=int, default=0,
                   help="onnxruntime intra-op threads (0: all cores; more than the cores: the cores)")
    p.add_argument("--batch", type=int, default=1, help="frames per generator call (1-64)")
    p.add_argument("--no-watermark", action="store_true",
                   help="leave frames unmarked (they are marked synthetic by default; see docs/architecture.md)")


def _add_c2pa_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--c2pa-key", metavar="KEY.pem", help="sign the output with a C2PA manifest: the private key "
                   "(with --c2pa-cert; needs the provenance extra)")
    p.add_argument("--c2pa-cert", metavar="CERTS.pem", help="the signing certificate chain, signing certificate first")
    p.add_argument("--c2pa-alg", default="es256", help="the key's algorithm: es256 (P-256, default), es384, es512, "
                   "ps256, ps384, ps512 (RSA) or ed25519")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser = argparse.ArgumentParser(prog="talkinghead", parents=[common],
                                     description="Few-shot neural talking heads on ONNX Runtime.")
    parser.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("animate", parents=[common], help="animate photos of a person with a driving video")
    p.add_argument("--source", nargs="+", metavar="IMG", help="1 to 32 photos of one person")
    p.add_argument("--avatar", help="an avatar file from `talkinghead embed` instead of --source")
    p.add_argument("--driving", required=True, metavar="VIDEO", help="driving video (mp4, mov, mpg, ...)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    p.add_argument("--mode", choices=["relative", "absolute"], default="relative",
                   help="relative (default): keep the source's face shape; absolute: take the driver's")
    p.add_argument("--crop-only", action="store_true", help="write the face crop, not the pasted source image")
    p.add_argument("--fps", type=float, help="output frame rate, at most 240 (default: the driving clip's)")
    p.add_argument("--face", type=int, default=0, help="which face in the source (0: the largest)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    _add_c2pa_options(p)
    _add_model_options(p)
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("demo", parents=[common], help="render the bundled avatar with a generated performance")
    p.add_argument("-o", "--output", default="demo.mp4", metavar="OUT.mp4")
    p.add_argument("--seconds", type=float, default=8.0, help="length, at most 600 (default 8)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate, at most 240 (default 25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated performance")
    p.add_argument("--overwrite", action="store_true")
    _add_c2pa_options(p)
    _add_model_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("embed", parents=[common], help="embed photos of a person into an avatar file")
    p.add_argument("--source", nargs="+", required=True, metavar="IMG")
    p.add_argument("-o", "--output", required=True, metavar="AVATAR.npz")
    p.add_argument("--face", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    _add_model_options(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("live", parents=[common], help="drive an avatar live: a webcam or a clip in real time")
    p.add_argument("--source", nargs="+", metavar="IMG", help="1 to 32 photos of one person")
    p.add_argument("--avatar", help="an avatar file from `talkinghead embed` instead of --source")
    p.add_argument("--camera", metavar="N", help="webcam index (Linux /dev/videoN, macOS AVFoundation) or dshow name")
    p.add_argument("--driving", metavar="CLIP", help="a clip instead of a camera")
    p.add_argument("--realtime", action="store_true", help="pace --driving at its own frame rate (frames "
                   "the renderer cannot keep up with are dropped, as with a camera)")
    p.add_argument("-o", "--output", metavar="OUT.mp4", help="record the rendered frames")
    p.add_argument("--virtual-camera", action="store_true", help="send frames to a virtual webcam (pyvirtualcam)")
    p.add_argument("--window", action="store_true", help="a preview window (pygame; needs a display)")
    p.add_argument("--seconds", type=float, help="stop after this long, at most 600")
    p.add_argument("--fps", type=float, help="frame rate of the recording and virtual camera (default 25)")
    p.add_argument("--mode", choices=["relative", "absolute"], default="relative")
    p.add_argument("--crop-only", action="store_true", help="the face crop, not the pasted source image")
    p.add_argument("--face", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    for name, default, help_text in (("eye-open", 1.0, "eye openness factor, 0..2"),
                                     ("mouth-open", 0.0, "added mouth opening, -0.1..0.4 face sizes"),
                                     ("smile", 0.0, "-1..1"), ("yaw", 0.0, "degrees, -45..45"),
                                     ("pitch", 0.0, "degrees, -30..30"), ("roll", 0.0, "degrees, -45..45")):
        p.add_argument(f"--{name}", type=float, default=default, help=help_text)
    p.add_argument("--expression-only", action="store_true", help="keep the source's head still; transfer expression")
    _add_c2pa_options(p)
    _add_model_options(p)
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("serve", parents=[common], help="a local web app and HTTP API (the [web] extra)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    _add_model_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("verify", parents=[common], help="is this image or video talkinghead's output? "
                       "(exit 0: the watermark is in every file, 3: not in some, 2: an error)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="the verdicts as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("info", parents=[common], help="versions, providers and the model's manifest")
    p.add_argument("--model", help="model package folder (default: the bundled model)")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else (logging.ERROR if args.quiet else logging.WARNING),
                        format="%(levelname)s: %(message)s", force=True)  # this call's stderr, not an earlier one's
    in_main = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        check_numbers(args)
        return args.func(args)
    except Terminated:
        print("terminated; nothing was written", file=sys.stderr)
        return EXIT_TERMINATED
    except TalkingHeadError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal failure: say so, with a traceback under --verbose
        if args.verbose:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

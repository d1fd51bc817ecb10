"""The model package manifest (``manifest.json``, schema_version 2; 1 still read): typed records and validation.

Version 2 adds ``family`` (``adain``: the paper's generator, landmarks + identity; ``warp``: the warping
generator, which also takes the avatar's reference shots) and, for ``warp``, ``references`` (how many
shots an avatar keeps, their crop resolution and the rule that picks them). A version-1 manifest is
an ``adain`` package.

:func:`validate_manifest` turns the parsed JSON into a :class:`Manifest` or raises
:class:`~talkinghead.errors.ModelPackageError` naming the offending key (``graphs.generator.sha256``).
Unknown keys are errors at every level, except inside ``quality`` and ``speed`` (informational
results written by the benchmarks, never read by the SDK). ``schema/manifest.schema.json`` states the
same structural rules as a JSON Schema (draft 2020-12); the rules that relate one field to another
(tensor shapes against ``resolution`` and ``embedding_dim``, variants against graphs, distinct files)
are checked here and in the C++ core only. docs/architecture.md describes every field.

Numpy-free and onnxruntime-free: this module only checks data.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InputError, ModelPackageError
from .limits import MAX_SHOTS

__all__ = [
    "SCHEMA_VERSION",
    "ROLES",
    "TensorSpec",
    "GraphSpec",
    "VariantError",
    "VariantSpec",
    "CropSpec",
    "LandmarkSpec",
    "ImageSpec",
    "ReferenceSpec",
    "Manifest",
    "validate_manifest",
    "expected_io",
    "check_relative_path",
]

SCHEMA_VERSION = 2
"""The manifest schema version the exporter writes (and the newest this talkinghead reads)."""
READABLE_VERSIONS = (1, 2)

ROLES = ("embedder", "generator")
SIZES = ("lite", "paper", "tiny", "warp", "tiny-warp")
FAMILIES = ("adain", "warp")
SELECTIONS = ("farthest-landmarks",)
REFERENCE_INPUTS = ("ref_images", "ref_landmarks")
"""A warp generator's inputs with the reference axis K: every frame of a batch shares them."""
KINDS = ("meta", "personalised")
DTYPES = ("float32", "float16", "int64", "int32", "uint8", "int8")
PRECISIONS = ("fp16", "int8")
METHODS = {"fp16": ("cast",), "int8": ("static", "dynamic")}
TARGETS = ("cpu", "gpu")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, dtype and shape (an int per fixed axis, a name per dynamic one)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class GraphSpec:
    """One graph of the package: its role (``embedder`` | ``generator``), file, hash and interface."""

    role: str
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    ir_version: int

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


@dataclass(frozen=True)
class VariantError:
    """A variant's measured error against the fp32 graph on the export's parity inputs."""

    max_abs: float
    mean_abs: float
    ssim: float  # of the rendered image (generator variants); 1.0 means identical


@dataclass(frozen=True)
class VariantSpec:
    """An alternative file for one graph (same inputs and outputs as that graph, float32 IO)."""

    name: str
    graph: str  # the role it replaces
    file: str
    sha256: str
    precision: str  # "fp16" | "int8"
    method: str  # "cast" (fp16) | "static" | "dynamic" (int8)
    target: str  # "cpu" | "gpu": where it is meant to run
    error: VariantError
    calibration: str | None = None


@dataclass(frozen=True)
class CropSpec:
    """The crop rule's constants (``talkinghead.crop.CropConfig``)."""

    scale: float
    offset_y: float


@dataclass(frozen=True)
class LandmarkSpec:
    layout: str  # "ibug68"
    count: int  # 68
    coords: str  # "crop_normalised"
    crop: CropSpec


@dataclass(frozen=True)
class ImageSpec:
    channels: str  # "rgb"
    range: tuple[float, float]  # (-1.0, 1.0)
    layout: str  # "nchw"


@dataclass(frozen=True)
class ReferenceSpec:
    """What a ``warp`` package's avatars keep of their shots for the generator."""

    cap: int  # at most this many shots (crops + landmarks); more are reduced by ``selection``
    resolution: int  # crop side of the reference images (the generator input ``ref_images``)
    selection: str  # "farthest-landmarks" (talkinghead.references)


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``raw`` is a deep copy of the JSON object it was built from."""

    schema_version: int
    name: str
    version: str
    size: str
    kind: str
    resolution: int
    embedding_dim: int
    landmarks: LandmarkSpec
    image: ImageSpec
    graphs: Mapping[str, GraphSpec]
    variants: Mapping[str, VariantSpec]
    default_avatar: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    family: str = "adain"
    references: ReferenceSpec | None = None

    @property
    def parity(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw.get("parity", {}))

    @property
    def training(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw.get("training", {}))

    @property
    def producer(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw["producer"])

    def files(self) -> dict[str, str]:
        """Every file the manifest names, keyed by where it is named (``graphs.generator``...)."""
        out = {f"graphs.{r}": g.file for r, g in self.graphs.items()}
        out.update({f"variants.{n}": v.file for n, v in self.variants.items()})
        if self.default_avatar is not None:
            out["default_avatar"] = self.default_avatar
        return out

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)


def expected_io(kind: str, role: str, resolution: int, embedding_dim: int, family: str = "adain",
                reference_resolution: int | None = None) -> tuple[list[dict], list[dict]]:
    """The inputs and outputs DESIGN.md fixes for a graph role, as manifest dicts.

    The exporter writes exactly these; the validator compares a manifest against them. A ``warp``
    generator also takes the avatar's reference shots: ``ref_images`` [K,3,S,S] (S the reference
    resolution) and ``ref_landmarks`` [K,68,2], K a dynamic axis shared by every frame of a batch.
    """
    r, d = resolution, embedding_dim
    f32 = "float32"
    if role == "embedder":
        return ([{"name": "image", "dtype": f32, "shape": ["N", 3, r, r]},
                 {"name": "landmarks", "dtype": f32, "shape": ["N", 68, 2]}],
                [{"name": "embedding", "dtype": f32, "shape": ["N", d]}])
    if role == "generator":
        inputs = [{"name": "landmarks", "dtype": f32, "shape": ["B", 68, 2]}]
        if kind == "meta":
            inputs.append({"name": "identity", "dtype": f32, "shape": ["B", d]})
        if family == "warp":
            s_ = reference_resolution or r
            inputs += [{"name": "ref_images", "dtype": f32, "shape": ["K", 3, s_, s_]},
                       {"name": "ref_landmarks", "dtype": f32, "shape": ["K", 68, 2]}]
        return inputs, [{"name": "image", "dtype": f32, "shape": ["B", 3, r, r]}]
    raise ValueError(f"unknown role {role!r}")


# --------------------------------------------------------------------------------------------------
# Validation helpers: each takes the dotted key path for its messages.


def _fail(where: str, message: str) -> ModelPackageError:
    return ModelPackageError(f"manifest: {where}: {message}", key=where)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _object(value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object, got {_type_name(value)}")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        allowed = ", ".join(sorted(required + optional))
        raise _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))} (allowed: {allowed})")
    missing = [k for k in required if k not in value]
    if missing:
        raise _fail(_key(where, missing[0]), "required key is missing")
    return value


def _key(where: str, key: str) -> str:
    return key if where == "(top level)" else f"{where}.{key}"


def _str(value: Any, where: str, *, pattern: re.Pattern[str] | None = None, choices: tuple[str, ...] | None = None,
         what: str = "") -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {_type_name(value)}")
    if choices is not None and value not in choices:
        raise _fail(where, f"expected one of {', '.join(map(repr, choices))}, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise _fail(where, f"expected {what or 'a string matching ' + pattern.pattern}, got {value!r}")
    return value


def _int(value: Any, where: str, *, minimum: int | None = None, const: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"expected an integer, got {_type_name(value)}")
    if const is not None and value != const:
        raise _fail(where, f"expected {const}, got {value}")
    if minimum is not None and value < minimum:
        raise _fail(where, f"expected an integer >= {minimum}, got {value}")
    return value


def _num(value: Any, where: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise _fail(where, f"expected a number >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise _fail(where, f"expected a number <= {maximum}, got {value}")
    return float(value)


def check_relative_path(value: Any, where: str) -> str:
    """A package-relative file path: POSIX separators, not absolute, no ``..``, no empty parts."""
    path = _str(value, where)
    if not path:
        raise _fail(where, "expected a file name, got an empty string")
    if "\\" in path or "\x00" in path:
        raise _fail(where, f"{path!r}: use '/' as the separator (no backslashes or NUL characters)")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise _fail(where, f"{path!r} is an absolute path; files must be relative to the package folder")
    parts = path.split("/")
    if ".." in parts:
        raise _fail(where, f"{path!r} leaves the package folder ('..' is not allowed)")
    if any(p in ("", ".") for p in parts):
        raise _fail(where, f"{path!r} has an empty or '.' path component")
    return path


# --------------------------------------------------------------------------------------------------
# Sections


def _tensor(value: Any, where: str) -> TensorSpec:
    obj = _object(value, where, ("name", "dtype", "shape"))
    name = _str(obj["name"], f"{where}.name", pattern=_DIM_NAME, what="a tensor name")
    dtype = _str(obj["dtype"], f"{where}.dtype", choices=DTYPES)
    shape = obj["shape"]
    if not isinstance(shape, list) or not shape:
        raise _fail(f"{where}.shape", f"expected a non-empty array, got {_type_name(shape)}")
    dims: list[int | str] = []
    for i, d in enumerate(shape):
        if isinstance(d, str):
            dims.append(_str(d, f"{where}.shape[{i}]", pattern=_DIM_NAME, what="a dimension name"))
        elif isinstance(d, int) and not isinstance(d, bool) and d >= 1:
            dims.append(d)
        else:
            raise _fail(f"{where}.shape[{i}]", f"expected a positive integer or a dimension name, got {d!r}")
    return TensorSpec(name, dtype, tuple(dims))


def _tensors(value: Any, where: str) -> tuple[TensorSpec, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, f"expected a non-empty array, got {_type_name(value)}")
    return tuple(_tensor(v, f"{where}[{i}]") for i, v in enumerate(value))


def _graph(role: str, value: Any, where: str) -> GraphSpec:
    obj = _object(value, where, ("file", "sha256", "inputs", "outputs", "opset", "ir_version"))
    return GraphSpec(
        role=role,
        file=check_relative_path(obj["file"], f"{where}.file"),
        sha256=_str(obj["sha256"], f"{where}.sha256", pattern=_SHA256, what="64 lowercase hex digits"),
        inputs=_tensors(obj["inputs"], f"{where}.inputs"),
        outputs=_tensors(obj["outputs"], f"{where}.outputs"),
        opset=_int(obj["opset"], f"{where}.opset", minimum=7),
        ir_version=_int(obj["ir_version"], f"{where}.ir_version", minimum=3),
    )


def _variant(name: str, value: Any, where: str) -> VariantSpec:
    obj = _object(value, where, ("graph", "file", "sha256", "precision", "method", "target", "error"),
                  ("calibration",))
    precision = _str(obj["precision"], f"{where}.precision", choices=PRECISIONS)
    err = _object(obj["error"], f"{where}.error", ("max_abs", "mean_abs", "ssim"))
    calibration = obj.get("calibration")
    return VariantSpec(
        name=name,
        graph=_str(obj["graph"], f"{where}.graph", choices=ROLES),
        file=check_relative_path(obj["file"], f"{where}.file"),
        sha256=_str(obj["sha256"], f"{where}.sha256", pattern=_SHA256, what="64 lowercase hex digits"),
        precision=precision,
        method=_str(obj["method"], f"{where}.method", choices=METHODS[precision]),
        target=_str(obj["target"], f"{where}.target", choices=TARGETS),
        error=VariantError(
            max_abs=_num(err["max_abs"], f"{where}.error.max_abs", minimum=0),
            mean_abs=_num(err["mean_abs"], f"{where}.error.mean_abs", minimum=0),
            ssim=_num(err["ssim"], f"{where}.error.ssim", minimum=-1, maximum=1),
        ),
        calibration=None if calibration is None else _str(calibration, f"{where}.calibration"),
    )


def _offset_y(value: Any) -> float:
    """The crop rule's offset_y, by the crop rule's own check (talkinghead.crop.CropConfig): a
    manifest the validator accepts must give a crop rule that crop.py takes (it refused +-1 after
    the validator had let them through)."""
    from .crop import CropConfig

    v = _num(value, "landmarks.crop.offset_y")
    try:
        CropConfig(offset_y=v).validate()
    except InputError as exc:
        raise _fail("landmarks.crop.offset_y", f"expected a number in (-1, 1), got {v}") from exc
    return v


def _landmarks(value: Any) -> LandmarkSpec:
    obj = _object(value, "landmarks", ("layout", "count", "coords", "crop"))
    crop = _object(obj["crop"], "landmarks.crop", ("scale", "offset_y"))
    scale = _num(crop["scale"], "landmarks.crop.scale")
    if scale <= 0:
        raise _fail("landmarks.crop.scale", f"expected a number > 0, got {scale}")
    return LandmarkSpec(
        layout=_str(obj["layout"], "landmarks.layout", choices=("ibug68",)),
        count=_int(obj["count"], "landmarks.count", const=68),
        coords=_str(obj["coords"], "landmarks.coords", choices=("crop_normalised",)),
        crop=CropSpec(scale, _offset_y(crop["offset_y"])),
    )


def _image(value: Any) -> ImageSpec:
    obj = _object(value, "image", ("channels", "range", "layout"))
    rng = obj["range"]
    if rng != [-1.0, 1.0] or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng):
        raise _fail("image.range", f"expected [-1.0, 1.0], got {rng!r}")
    return ImageSpec(
        channels=_str(obj["channels"], "image.channels", choices=("rgb",)),
        range=(-1.0, 1.0),
        layout=_str(obj["layout"], "image.layout", choices=("nchw",)),
    )


def _stats(value: Any, where: str) -> None:
    obj = _object(value, where, ("max_abs", "mean_abs"))
    for k in ("max_abs", "mean_abs"):
        _num(obj[k], f"{where}.{k}", minimum=0)


def _parity(value: Any) -> None:
    obj = _object(value, "parity", ("tolerance", "data"), ROLES + ("pruned",))
    _num(obj["tolerance"], "parity.tolerance", minimum=0)
    data = _object(obj["data"], "parity.data", ("kind", "description", "samples"))
    _str(data["kind"], "parity.data.kind", choices=("real", "synthetic"))
    _str(data["description"], "parity.data.description")
    _int(data["samples"], "parity.data.samples", minimum=1)
    for role in ROLES:
        if role in obj:
            _stats(obj[role], f"parity.{role}")
    if "pruned" in obj:
        pruned = _object(obj["pruned"], "parity.pruned", ("blocks", "tolerance", "max_abs", "mean_abs"))
        blocks = pruned["blocks"]
        if not isinstance(blocks, list) or not all(isinstance(b, str) and b for b in blocks):
            raise _fail("parity.pruned.blocks", f"expected a list of module paths, got {blocks!r}")
        for k in ("tolerance", "max_abs", "mean_abs"):
            _num(pruned[k], f"parity.pruned.{k}", minimum=0)


def _training(value: Any) -> None:
    obj = _object(value, "training", ("data", "steps", "content_backbone"),
                  ("videos", "photos", "frames", "seconds", "finetune"))
    _str(obj["data"], "training.data")
    _int(obj["steps"], "training.steps", minimum=0)
    _str(obj["content_backbone"], "training.content_backbone")
    for k in ("videos", "photos", "frames"):
        if k in obj:
            _int(obj[k], f"training.{k}", minimum=0)
    if "seconds" in obj:
        _num(obj["seconds"], "training.seconds", minimum=0)
    if "finetune" in obj:
        ft = _object(obj["finetune"], "training.finetune", ("steps", "shots"))
        _int(ft["steps"], "training.finetune.steps", minimum=0)
        _int(ft["shots"], "training.finetune.shots", minimum=1)


def _producer(value: Any) -> None:
    obj = _object(value, "producer", ("name", "version"), ("torch", "onnx", "onnxruntime"))
    for k in obj:
        _str(obj[k], f"producer.{k}")


def _schema_version(data: Any) -> None:
    if not isinstance(data, dict):
        raise ModelPackageError(f"manifest: expected a JSON object at the top level, got {_type_name(data)}",
                                key="(top level)")
    if "schema_version" not in data:
        raise _fail("schema_version", "required key is missing (is this a talkinghead manifest.json?)")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail("schema_version", f"expected an integer, got {_type_name(version)}")
    if version in READABLE_VERSIONS:
        return
    if version > SCHEMA_VERSION:
        from . import __version__

        raise ModelPackageError(
            f"manifest: schema_version {version} is newer than this talkinghead ({__version__}) reads "
            f"(schema_version {SCHEMA_VERSION}): upgrade talkinghead (pip install -U talkinghead), "
            f"or re-export the model with this version's exporter (python -m export)", key="schema_version")
    raise ModelPackageError(
        f"manifest: schema_version {version} is not supported (this talkinghead reads schema_version "
        f"{', '.join(map(str, READABLE_VERSIONS))}): re-export the model with the current exporter (python -m export)",
        key="schema_version")


# --------------------------------------------------------------------------------------------------


_TOP_REQUIRED = ("schema_version", "name", "version", "size", "kind", "resolution", "embedding_dim",
                 "landmarks", "image", "graphs", "producer")
_TOP_OPTIONAL = ("variants", "parity", "training", "quality", "speed", "default_avatar")
_V2_REQUIRED = ("family",)
_V2_OPTIONAL = ("references",)


def _references(value: Any, resolution: int) -> ReferenceSpec:
    obj = _object(value, "references", ("cap", "resolution", "selection"))
    cap = _int(obj["cap"], "references.cap", minimum=1)
    if cap > MAX_SHOTS:
        raise _fail("references.cap", f"expected at most {MAX_SHOTS}, got {cap}")
    res = _int(obj["resolution"], "references.resolution", minimum=8)
    if res < resolution:
        raise _fail("references.resolution", f"expected at least the output resolution {resolution}, got {res}")
    return ReferenceSpec(cap, res, _str(obj["selection"], "references.selection", choices=SELECTIONS))


def validate_manifest(data: Any) -> Manifest:
    """Check a parsed manifest.json and return it as a :class:`Manifest`.

    Raises:
        ModelPackageError: naming the first offending key, or saying what to do about a schema
            version this talkinghead does not read.
    """
    _schema_version(data)
    top = "(top level)"
    version = data["schema_version"]
    if version >= 2:
        obj = _object(data, top, _TOP_REQUIRED + _V2_REQUIRED, _TOP_OPTIONAL + _V2_OPTIONAL)
    else:
        obj = _object(data, top, _TOP_REQUIRED, _TOP_OPTIONAL)
    kind = _str(obj["kind"], "kind", choices=KINDS)
    resolution = _int(obj["resolution"], "resolution", minimum=8)
    embedding_dim = _int(obj["embedding_dim"], "embedding_dim", minimum=1)
    family = _str(obj["family"], "family", choices=FAMILIES) if version >= 2 else "adain"
    references = None
    if family == "warp":
        if "references" not in obj:
            raise _fail("references", "required key is missing (a 'warp' package states its reference cap)")
        if kind != "meta":
            raise _fail("kind", "a 'warp' package is 'meta' (personalised warp packages are not defined yet)")
        references = _references(obj["references"], resolution)
    elif "references" in obj:
        raise _fail("references", "only a 'warp' package has references")

    graphs_obj = _object(obj["graphs"], "graphs", ("generator",), ("embedder",))
    graphs = {role: _graph(role, graphs_obj[role], f"graphs.{role}") for role in ROLES if role in graphs_obj}
    if kind == "meta" and "embedder" not in graphs:
        raise _fail("graphs.embedder", "required key is missing (a 'meta' package needs its embedder)")
    if kind == "personalised" and "embedder" in graphs:
        raise _fail("graphs.embedder", "a 'personalised' package has no embedder (its identity is baked in)")
    for role, g in graphs.items():
        _check_io(g, kind, resolution, embedding_dim, family, references.resolution if references else None)

    variants_obj = obj.get("variants", {})
    if not isinstance(variants_obj, dict):
        raise _fail("variants", f"expected an object, got {_type_name(variants_obj)}")
    variants: dict[str, VariantSpec] = {}
    for name, v in variants_obj.items():
        where = f"variants.{name}"
        _str(name, where, pattern=_VARIANT_NAME, what="a variant name (lowercase letters, digits, '_', '-')")
        if name == "fp32":
            raise _fail(where, "'fp32' names the reference graphs themselves and cannot be a variant")
        variants[name] = _variant(name, v, where)
        if variants[name].graph not in graphs:
            raise _fail(f"{where}.graph", f"the package has no {variants[name].graph!r} graph")

    default_avatar = None
    if "default_avatar" in obj:
        default_avatar = check_relative_path(obj["default_avatar"], "default_avatar")
    if "parity" in obj:
        _parity(obj["parity"])
    if "training" in obj:
        _training(obj["training"])
    for k in ("quality", "speed"):
        if k in obj and not isinstance(obj[k], dict):
            raise _fail(k, f"expected an object, got {_type_name(obj[k])}")
    _producer(obj["producer"])

    manifest = Manifest(
        schema_version=version,
        name=_str(obj["name"], "name", pattern=_NAME, what="a model name (letters, digits, '.', '_', '-')"),
        version=_str(obj["version"], "version", pattern=_NAME, what="a version string such as '0.1.0'"),
        size=_str(obj["size"], "size", choices=SIZES),
        kind=kind,
        resolution=resolution,
        embedding_dim=embedding_dim,
        landmarks=_landmarks(obj["landmarks"]),
        image=_image(obj["image"]),
        graphs=graphs,
        variants=variants,
        default_avatar=default_avatar,
        raw=copy.deepcopy(obj),
        family=family,
        references=references,
    )
    _check_distinct_files(manifest)
    return manifest


def _check_io(g: GraphSpec, kind: str, resolution: int, embedding_dim: int, family: str,
              reference_resolution: int | None) -> None:
    """The graph's inputs and outputs are the ones DESIGN.md fixes for its role, the package's kind and family."""
    want_in, want_out = expected_io(kind, g.role, resolution, embedding_dim, family, reference_resolution)
    for what, got, want in (("inputs", g.inputs, want_in), ("outputs", g.outputs, want_out)):
        where = f"graphs.{g.role}.{what}"
        got_names, want_names = [t.name for t in got], [t["name"] for t in want]
        if got_names != want_names:
            raise _fail(where, f"a {kind!r} package's {g.role} has {what} {want_names}, "
                               f"the manifest says {got_names}")
        for i, (t, w) in enumerate(zip(got, want)):
            if t.dtype != w["dtype"]:
                raise _fail(f"{where}[{i}].dtype", f"expected {w['dtype']!r}, got {t.dtype!r}")
            if len(t.shape) != len(w["shape"]):
                raise _fail(f"{where}[{i}].shape",
                            f"expected {len(w['shape'])} axes like {w['shape']}, got {list(t.shape)}")
            for j, (d, wd) in enumerate(zip(t.shape, w["shape"])):
                if isinstance(wd, int) and d != wd:
                    raise _fail(f"{where}[{i}].shape[{j}]",
                                f"expected {wd} (from resolution/embedding_dim/the landmark layout), got {d!r}")
                if isinstance(wd, str) and not isinstance(d, str):
                    raise _fail(f"{where}[{i}].shape[{j}]", f"the {'reference' if wd == 'K' else 'batch'} axis must be dynamic (a name), got {d!r}")


def _check_distinct_files(m: Manifest) -> None:
    seen: dict[str, str] = {}
    for where, f in m.files().items():
        if f == "manifest.json":
            raise _fail(f"{where}", "'manifest.json' cannot be a graph or avatar file")
        if f in seen:
            raise _fail(f"{where}", f"{f!r} is already named by {seen[f]}")
        seen[f] = where

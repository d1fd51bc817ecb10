"""A model package: a folder with ``manifest.json`` and the graph files it names, verified.

:meth:`ModelPackage.load` reads and validates the manifest (:mod:`talkinghead.manifest`), resolves
every file it names inside the folder (relative paths only: ``..``, absolute paths and symlinks that
lead outside the folder are refused), checks each file's sha256 (streamed), and reads each graph's
ONNX header to cross-check the ``talkinghead.role`` stamp, the IR version and the opset against the
manifest. No onnxruntime session is created here (see :mod:`talkinghead.sessions`); once one exists,
:func:`check_session_io` compares its inputs and outputs and its role stamp with the manifest.

Reading the role without the ``onnx`` package: the SDK depends on numpy and onnxruntime only, and an
``InferenceSession`` is far too costly to create just to read metadata. An ONNX file is a protobuf
``ModelProto`` whose top level is small except for the graph (field 7), so :func:`read_onnx_header`
walks the top-level fields, seeks past the graph and the other large fields, and decodes only
``ir_version`` (1), ``opset_import`` (8) and ``metadata_props`` (14). It never reads the weights.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Mapping

from .errors import ModelPackageError
from .filetypes import json_depth
from .manifest import GraphSpec, LandmarkSpec, Manifest, ReferenceSpec, TensorSpec, VariantSpec, validate_manifest

if TYPE_CHECKING:  # pragma: no cover
    from .crop import CropConfig

__all__ = ["ModelPackage", "OnnxHeader", "read_onnx_header", "read_onnx_header_from", "parse_manifest_json",
           "check_session_io", "sha256_file",
           "ROLE_KEY", "VARIANT_KEY"]

MANIFEST_NAME = "manifest.json"
ROLE_KEY = "talkinghead.role"
"""ONNX metadata_props key the exporter stamps with the graph's role (``embedder`` | ``generator``)."""
VARIANT_KEY = "talkinghead.variant"
"""ONNX metadata_props key of a variant file (``int8``, ``fp16``); absent on the fp32 graphs."""

_MAX_MANIFEST_BYTES = 4 << 20
_MAX_HEADER_FIELD = 16 << 20  # opset_import / metadata_props larger than this are not ours


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# A protobuf-free reader of an ONNX file's top-level fields


@dataclass(frozen=True)
class OnnxHeader:
    """What :func:`read_onnx_header` decodes from an ONNX ModelProto."""

    ir_version: int
    opsets: Mapping[str, int]  # domain ("" is the default ONNX domain) -> version
    metadata: Mapping[str, str]  # metadata_props


class _Truncated(Exception):
    pass


def _varint_stream(f: BinaryIO) -> int:
    shift, value = 0, 0
    while True:
        b = f.read(1)
        if not b:
            raise _Truncated
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _varint_bytes(buf: bytes, pos: int) -> tuple[int, int]:
    shift, value = 0, 0
    while True:
        if pos >= len(buf):
            raise _Truncated
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of a small message: ints for varints, bytes for the rest."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint_bytes(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint_bytes(buf, pos)
        elif wire == 2:
            n, pos = _varint_bytes(buf, pos)
            if pos + n > len(buf):
                raise _Truncated
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise _Truncated
        out.append((num, wire, value))
    return out


def _text(value: Any) -> str:
    """A protobuf string field's value (bytes of UTF-8); ValueError for a field of another wire type."""
    if not isinstance(value, bytes):
        raise ValueError(f"a string field holds a {type(value).__name__}")
    return value.decode("utf-8")


def _number(value: Any) -> int:
    if not isinstance(value, int):
        raise ValueError(f"a number field holds {type(value).__name__}")
    return value


def read_onnx_header(path: str | os.PathLike) -> OnnxHeader:
    """Decode ir_version, opset_import and metadata_props of an ONNX file without reading its graph.

    Raises:
        ModelPackageError: the file is not a readable ONNX model.
    """
    path = Path(path)
    with open(path, "rb") as f:
        return read_onnx_header_from(f, path.stat().st_size, path.name)


def read_onnx_header_from(f: BinaryIO, size: int, name: str) -> OnnxHeader:
    """:func:`read_onnx_header` of an open binary file of ``size`` bytes (``name`` in messages)."""
    ir_version, opsets, metadata = 0, {}, {}
    try:
        while f.tell() < size:
            key = _varint_stream(f)
            num, wire = key >> 3, key & 7
            if wire == 0:
                value = _varint_stream(f)
                if num == 1:
                    ir_version = value
            elif wire == 2:
                n = _varint_stream(f)
                if f.tell() + n > size:
                    raise _Truncated
                if num in (8, 14):
                    if n > _MAX_HEADER_FIELD:
                        raise ValueError(f"field {num} is implausibly large ({n} bytes)")
                    sub = dict((k, v) for k, _, v in _fields(f.read(n)))
                    if num == 8:
                        opsets[_text(sub.get(1, b""))] = _number(sub.get(2, 0))
                    else:
                        metadata[_text(sub.get(1, b""))] = _text(sub.get(2, b""))
                else:
                    f.seek(n, os.SEEK_CUR)
            elif wire == 1:
                f.seek(8, os.SEEK_CUR)
            elif wire == 5:
                f.seek(4, os.SEEK_CUR)
            else:
                raise ValueError(f"unsupported protobuf wire type {wire}")
        if f.tell() != size:
            raise _Truncated
    except _Truncated:
        raise ModelPackageError(f"{name} is truncated or not an ONNX model") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelPackageError(f"{name} is not an ONNX model ({exc})") from None
    if ir_version <= 0:
        raise ModelPackageError(f"{name} is not an ONNX model (it has no ir_version)")
    return OnnxHeader(ir_version, opsets, metadata)


# --------------------------------------------------------------------------------------------------
# Session checks

_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
    "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(int8)": "int8",
}


def _check_tensors(kind: str, actual: list[Any], expected: tuple[TensorSpec, ...], where: str) -> None:
    names = [a.name for a in actual]
    want = [t.name for t in expected]
    if names != want:
        raise ModelPackageError(f"{where}: the graph's {kind} are {names}, the manifest says {want}")
    for a, t in zip(actual, expected):
        dtype = _ORT_DTYPES.get(a.type, a.type)
        if dtype != t.dtype:
            raise ModelPackageError(f"{where}: {kind[:-1]} {t.name!r} is {dtype} in the graph, "
                                    f"{t.dtype} in the manifest")
        shape = list(a.shape) if a.shape is not None else None
        ok = shape is not None and len(shape) == len(t.shape) and all(
            (isinstance(d, str) and (g is None or isinstance(g, str))) or (isinstance(d, int) and g == d)
            for d, g in zip(t.shape, shape))
        if not ok:
            raise ModelPackageError(f"{where}: {kind[:-1]} {t.name!r} has shape {shape} in the graph, "
                                    f"{list(t.shape)} in the manifest (names are dynamic axes)")


def check_session_io(session: Any, graph: GraphSpec, *, variant: VariantSpec | None = None) -> None:
    """Check an onnxruntime ``InferenceSession`` against the manifest's record of its graph.

    Compares the ``talkinghead.role`` stamp in the graph's metadata with ``graph.role`` (and, for a
    variant file, ``talkinghead.variant`` with the variant's name), then the input and output names
    (in order), dtypes and shapes (fixed axes exactly; named axes must be dynamic in the graph).
    Variants have their graph's inputs and outputs.

    Raises:
        ModelPackageError: on any mismatch, naming the file.
    """
    where = variant.file if variant is not None else graph.file
    meta = session.get_modelmeta().custom_metadata_map
    role = meta.get(ROLE_KEY)
    if role != graph.role:
        raise ModelPackageError(f"{where}: the graph is stamped {ROLE_KEY}={role!r}, the manifest lists it "
                                f"as the {graph.role!r} graph")
    if variant is not None and meta.get(VARIANT_KEY) != variant.name:
        raise ModelPackageError(f"{where}: the graph is stamped {VARIANT_KEY}={meta.get(VARIANT_KEY)!r}, "
                                f"the manifest lists it as variant {variant.name!r}")
    _check_tensors("inputs", session.get_inputs(), graph.inputs, where)
    _check_tensors("outputs", session.get_outputs(), graph.outputs, where)


# --------------------------------------------------------------------------------------------------


def _resolve_inside(folder: Path, rel: str, where: str) -> Path:
    """``folder / rel`` with symlinks resolved; refused unless it is a regular file inside ``folder``."""
    candidate = folder / rel
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise ModelPackageError(f"{where}: {rel!r} is missing from the package folder {folder}") from None
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise ModelPackageError(f"{where}: {rel!r} cannot be resolved ({exc})") from None
    if not resolved.is_relative_to(folder):
        raise ModelPackageError(f"{where}: {rel!r} resolves to {resolved}, outside the package folder "
                                f"{folder} (symlinks out of the package are refused)")
    if not resolved.is_file():
        raise ModelPackageError(f"{where}: {rel!r} is not a regular file")
    return resolved


def _read_manifest(folder: Path) -> Any:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ModelPackageError(f"{folder} is not a model package: it has no {MANIFEST_NAME}")
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise ModelPackageError(f"{path}: implausibly large for a manifest")
    return parse_manifest_json(path.read_bytes(), str(path))


_MAX_JSON_DEPTH = 32  # a manifest nests 5 deep; Python's parser recurses (10^5 "[" overflow it)


def parse_manifest_json(data: bytes, name: str = MANIFEST_NAME) -> Any:
    """The JSON value of manifest bytes (UTF-8, an optional byte-order mark as the C++ core
    allows, at most ``_MAX_JSON_DEPTH`` levels of nesting); ModelPackageError otherwise."""
    deepest = json_depth(data)
    if deepest > _MAX_JSON_DEPTH:
        raise ModelPackageError(f"{name} nests {deepest} levels deep (a manifest has at most {_MAX_JSON_DEPTH})",
                                key="(json)")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackageError(f"{name} is not valid JSON: {exc}", key="(json)") from None


class ModelPackage:
    """A verified model package folder. Build with :meth:`load`."""

    def __init__(self, folder: Path, manifest: Manifest, files: Mapping[str, Path]) -> None:
        self.folder = folder
        self.manifest = manifest
        self._files = dict(files)  # manifest location ("graphs.generator", ...) -> resolved path

    @classmethod
    def load(cls, folder: str | os.PathLike, *, verify_hashes: bool = True) -> "ModelPackage":
        """Read, validate and verify a package folder.

        Args:
            folder: the package folder (holding ``manifest.json``).
            verify_hashes: check every file's sha256 (streamed; a few ms per MB). Leave on unless the
                folder was verified moments ago.

        Raises:
            ModelPackageError: a missing or invalid manifest, an unknown schema version, a path that
                leaves the folder, a missing file, a sha256 mismatch, or a graph whose ONNX header
                (role stamp, IR version, opset) disagrees with the manifest.
        """
        root = Path(folder)
        if not root.is_dir():
            raise ModelPackageError(f"model package folder not found: {root}")
        root = root.resolve()
        try:
            manifest = validate_manifest(_read_manifest(root))
        except ModelPackageError as exc:
            raise ModelPackageError(f"{root / MANIFEST_NAME}: {exc}") from None
        files = {where: _resolve_inside(root, rel, where) for where, rel in manifest.files().items()}
        pkg = cls(root, manifest, files)
        if verify_hashes:
            pkg.verify_hashes()
        pkg._check_headers()
        return pkg

    def verify_hashes(self) -> None:
        """Recompute every graph's sha256 and compare it with the manifest."""
        records: list[tuple[str, str]] = [(f"graphs.{r}", g.sha256) for r, g in self.graphs.items()]
        records += [(f"variants.{n}", v.sha256) for n, v in self.variants.items()]
        for where, expected in records:
            path = self._files[where]
            actual = sha256_file(path)
            if actual != expected:
                raise ModelPackageError(
                    f"{path.name}: sha256 mismatch ({where}): the file hashes to {actual}, the manifest "
                    f"says {expected}. The file was modified or corrupted: restore it or re-export the package")

    def _check_headers(self) -> None:
        for role, g in self.graphs.items():
            self._check_header(self._files[f"graphs.{role}"], role, g, None)
        for name, v in self.variants.items():
            self._check_header(self._files[f"variants.{name}"], v.graph, None, v)

    @staticmethod
    def _check_header(path: Path, role: str, graph: GraphSpec | None, variant: VariantSpec | None) -> None:
        header = read_onnx_header(path)
        stamped = header.metadata.get(ROLE_KEY)
        if stamped != role:
            raise ModelPackageError(f"{path.name}: its ONNX metadata says {ROLE_KEY}={stamped!r}, the manifest "
                                    f"lists it as the {role!r} graph")
        if variant is not None and header.metadata.get(VARIANT_KEY) != variant.name:
            raise ModelPackageError(f"{path.name}: its ONNX metadata says {VARIANT_KEY}="
                                    f"{header.metadata.get(VARIANT_KEY)!r}, the manifest lists it as variant "
                                    f"{variant.name!r}")
        if graph is not None:
            if header.ir_version != graph.ir_version:
                raise ModelPackageError(f"{path.name}: IR version {header.ir_version}, the manifest says "
                                        f"{graph.ir_version}")
            opset = header.opsets.get("", header.opsets.get("ai.onnx"))
            if opset != graph.opset:
                raise ModelPackageError(f"{path.name}: opset {opset}, the manifest says {graph.opset}")

    # ------------------------------------------------------------------------------------------
    # Properties

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def size(self) -> str:
        """``lite`` | ``paper`` | ``tiny`` | ``warp`` | ``tiny-warp``."""
        return self.manifest.size

    @property
    def kind(self) -> str:
        """``meta`` (identity input, has an embedder) | ``personalised`` (identity baked in)."""
        return self.manifest.kind

    @property
    def family(self) -> str:
        """``adain`` (landmarks + identity) | ``warp`` (also the avatar's reference shots)."""
        return self.manifest.family

    @property
    def references(self) -> "ReferenceSpec | None":
        """A ``warp`` package's reference cap, crop resolution and selection rule (None for ``adain``)."""
        return self.manifest.references

    @property
    def is_personalised(self) -> bool:
        return self.manifest.kind == "personalised"

    @property
    def resolution(self) -> int:
        return self.manifest.resolution

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def landmarks(self) -> LandmarkSpec:
        return self.manifest.landmarks

    @property
    def crop_config(self) -> "CropConfig":
        """The crop rule the model was trained with, as :class:`talkinghead.crop.CropConfig`."""
        from .crop import CropConfig

        c = self.manifest.landmarks.crop
        return CropConfig(scale=c.scale, offset_y=c.offset_y)

    @property
    def graphs(self) -> Mapping[str, GraphSpec]:
        """Role -> graph record (``generator`` always; ``embedder`` in a meta package)."""
        return self.manifest.graphs

    @property
    def variants(self) -> Mapping[str, VariantSpec]:
        """Variant name (``int8``, ``fp16``) -> record."""
        return self.manifest.variants

    def has_graph(self, role: str) -> bool:
        return role in self.manifest.graphs

    def graph(self, role: str) -> GraphSpec:
        """The manifest's record of a graph; the inputs and outputs every variant of it shares."""
        try:
            return self.manifest.graphs[role]
        except KeyError:
            raise ModelPackageError(f"package {self.name!r} ({self.kind}) has no {role!r} graph "
                                    f"(it has {sorted(self.manifest.graphs)})") from None

    def variant_names(self, role: str = "generator") -> tuple[str, ...]:
        """The variants available for a graph, besides ``fp32``."""
        return tuple(n for n, v in self.manifest.variants.items() if v.graph == role)

    def variant(self, name: str) -> VariantSpec:
        try:
            return self.manifest.variants[name]
        except KeyError:
            raise ModelPackageError(f"package {self.name!r} has no variant {name!r} (it has fp32"
                                    f"{''.join(', ' + n for n in self.manifest.variants)})") from None

    def graph_path(self, role: str, variant: str | None = None) -> Path:
        """The file of a graph, or of one of its variants (``None`` or ``"fp32"``: the reference graph)."""
        self.graph(role)
        if variant in (None, "fp32"):
            return self._files[f"graphs.{role}"]
        v = self.variant(variant)
        if v.graph != role:
            raise ModelPackageError(f"variant {variant!r} of package {self.name!r} is of the {v.graph!r} graph, "
                                    f"not the {role!r} graph")
        return self._files[f"variants.{variant}"]

    @property
    def embedder_path(self) -> Path | None:
        return self._files.get("graphs.embedder")

    @property
    def generator_path(self) -> Path:
        return self._files["graphs.generator"]

    @property
    def default_avatar_path(self) -> Path | None:
        return self._files.get("default_avatar")

    def check_session(self, session: Any, role: str, variant: str | None = None) -> None:
        """:func:`check_session_io` for a session created from :meth:`graph_path` (role, variant)."""
        spec = None if variant in (None, "fp32") else self.variant(variant)
        check_session_io(session, self.graph(role), variant=spec)

    def __repr__(self) -> str:
        return (f"ModelPackage({str(self.folder)!r}, name={self.name!r}, kind={self.kind!r}, "
                f"resolution={self.resolution}, variants={list(self.variants)})")

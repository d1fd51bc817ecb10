"""Export of a tiny random model to a model package, and the SDK's checks of such packages."""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from export import ExportError, export_checkpoint
from export.__main__ import main as export_main
from export.package_variants import main as variants_main
from training.metrics import ssim
from talkinghead.errors import ModelPackageError
from talkinghead.manifest import SCHEMA_VERSION
from talkinghead.manifest import validate_manifest
from talkinghead.package import ModelPackage, check_session_io, read_onnx_header
from tests.training.synthetic import make_prepared_dataset
from training.checkpoint import CheckpointState, build_models, load_checkpoint, save_checkpoint
from training.config import tiny_config

SCHEMA = Path(__file__).resolve().parents[2] / "sdk" / "talkinghead" / "schema" / "manifest.schema.json"


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def calibration(work) -> Path:
    return make_prepared_dataset(work / "prepared", videos=2, frames=3, resolution=64)


@pytest.fixture(scope="module")
def meta_checkpoint(work) -> Path:
    torch.manual_seed(0)
    models = build_models(tiny_config(), 2)
    return save_checkpoint(work / "meta.safetensors", models, CheckpointState(step=0))


@pytest.fixture(scope="module")
def meta_package(work, meta_checkpoint, calibration) -> Path:
    result = export_checkpoint(meta_checkpoint, work / "pkg", variants=("int8", "fp16"),
                               calibration=calibration, samples=4)
    return result.path


@pytest.fixture(scope="module")
def personal_package(work, meta_checkpoint, calibration) -> Path:
    """A personalised checkpoint as fine-tuning starts it (psi = P e_hat; no training steps, which
    take seconds even at this size) exported with the identity baked in."""
    models, _ = load_checkpoint(meta_checkpoint)
    frames = sorted((calibration / "synthetic_00" / "frames").glob("*.jpg"))
    images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in frames]))
    images = images.permute(0, 3, 1, 2).float() / 127.5 - 1
    landmarks = torch.from_numpy(np.load(calibration / "synthetic_00" / "landmarks.npy"))
    with torch.no_grad():
        models.psi = models.generator.project(models.embedder.eval()(images, landmarks).mean(0, keepdim=True))
    ckpt = save_checkpoint(work / "personal.safetensors", models,
                           CheckpointState(step=0, kind="personalised", extra={"finetune_steps": 0, "shots": 3}))
    return export_checkpoint(ckpt, work / "personal", calibration=calibration, samples=3).path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


# --------------------------------------------------------------------------------------------------
# The export


def test_meta_export_writes_a_verified_package(meta_package):
    names = sorted(p.name for p in meta_package.iterdir())
    assert names == ["embedder.onnx", "generator.fp16.onnx", "generator.int8.onnx", "generator.onnx",
                     "manifest.json"]
    pkg = ModelPackage.load(meta_package)
    assert (pkg.kind, pkg.size, pkg.resolution, pkg.embedding_dim) == ("meta", "tiny", 64, 64)
    assert pkg.graph("generator").input_names == ("landmarks", "identity")
    assert pkg.variant_names("generator") == ("int8", "fp16")
    assert pkg.graph_path("generator", "int8").name == "generator.int8.onnx"
    assert pkg.crop_config.scale == pytest.approx(1.7)
    m = pkg.manifest
    assert m.parity["data"]["kind"] == "real" and m.parity["data"]["samples"] == 4
    for role in ("embedder", "generator"):
        assert m.parity[role]["max_abs"] <= 1e-4
    for v in m.variants.values():
        assert 0 <= v.error.max_abs <= 2 and -1 <= v.error.ssim <= 1
    assert m.training["steps"] == 0 and m.training["content_backbone"] == "none"
    leftovers = [p.name for p in meta_package.parent.iterdir() if p.name.startswith(".pkg")]
    assert leftovers == []


def test_graphs_run_on_onnxruntime_and_match_the_manifest(meta_package):
    pkg = ModelPackage.load(meta_package)
    rng = np.random.default_rng(0)
    lm = rng.uniform(-0.6, 0.6, (3, 68, 2)).astype(np.float32)
    emb = _session(pkg.embedder_path)
    check_session_io(emb, pkg.graph("embedder"))
    e = emb.run(None, {"image": rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32), "landmarks": lm})[0]
    assert e.shape == (3, 64)
    for variant in ("fp32", "int8", "fp16"):
        sess = _session(pkg.graph_path("generator", variant))
        pkg.check_session(sess, "generator", variant)
        out = sess.run(None, {"landmarks": lm, "identity": e})[0]
        assert out.shape == (3, 3, 64, 64) and out.dtype == np.float32
        assert np.all(np.abs(out) <= 1.0)


def test_check_session_io_refuses_the_wrong_graph(meta_package):
    pkg = ModelPackage.load(meta_package)
    with pytest.raises(ModelPackageError, match="talkinghead.role='embedder'"):
        check_session_io(_session(pkg.embedder_path), pkg.graph("generator"))
    gen = _session(pkg.generator_path)
    spec = pkg.graph("generator")
    bad = type(spec)(**{**spec.__dict__, "inputs": spec.inputs[::-1]})
    with pytest.raises(ModelPackageError, match="inputs"):
        check_session_io(gen, bad)
    with pytest.raises(ModelPackageError, match="variant"):  # the fp32 file is not the int8 variant
        check_session_io(gen, spec, variant=pkg.variant("int8"))


def test_onnx_header_reader_agrees_with_onnx(meta_package):
    for path in meta_package.glob("*.onnx"):
        model = onnx.load(path, load_external_data=False)
        header = read_onnx_header(path)
        assert header.ir_version == model.ir_version
        assert header.metadata == {p.key: p.value for p in model.metadata_props}
        assert header.opsets == {o.domain: o.version for o in model.opset_import}


def test_personalised_export_runs_with_landmarks_alone(personal_package):
    pkg = ModelPackage.load(personal_package)
    assert pkg.kind == "personalised" and pkg.is_personalised
    assert pkg.embedder_path is None and not (personal_package / "embedder.onnx").exists()
    assert pkg.manifest.training["finetune"] == {"steps": 0, "shots": 3}
    sess = _session(pkg.generator_path)
    check_session_io(sess, pkg.graph("generator"))
    assert [i.name for i in sess.get_inputs()] == ["landmarks"]
    lm = np.random.default_rng(1).uniform(-0.6, 0.6, (2, 68, 2)).astype(np.float32)
    out = sess.run(None, {"landmarks": lm})[0]
    assert out.shape == (2, 3, 64, 64)


def test_exporter_refuses_to_overwrite(meta_package, meta_checkpoint, capsys):
    before = (meta_package / "manifest.json").read_bytes()
    with pytest.raises(ExportError, match="--overwrite"):
        export_checkpoint(meta_checkpoint, meta_package)
    assert export_main([str(meta_checkpoint), str(meta_package), "--synthetic"]) == 2
    assert "exists" in capsys.readouterr().err
    assert (meta_package / "manifest.json").read_bytes() == before


def test_failed_parity_writes_nothing(work, meta_checkpoint):
    out = work / "never"
    with pytest.raises(ExportError, match="parity check failed"):
        export_checkpoint(meta_checkpoint, out, synthetic=True, samples=2, tolerance=1e-12,
                          instance_norm="two-stage")
    assert not out.exists()
    assert not [p for p in work.iterdir() if p.name.startswith(".never")]


# --------------------------------------------------------------------------------------------------
# Refusals when loading


def test_tampered_graph_is_refused(meta_package, tmp_path):
    pkg = _copy(meta_package, tmp_path / "pkg")
    data = bytearray((pkg / "generator.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (pkg / "generator.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelPackageError, match="sha256 mismatch"):
        ModelPackage.load(pkg)


def test_unknown_schema_version_says_what_to_do(meta_package, tmp_path):
    pkg = _copy(meta_package, tmp_path / "pkg")
    manifest = _manifest(pkg)
    manifest["schema_version"] = SCHEMA_VERSION + 1
    manifest["a_key_from_the_future"] = True
    _write_manifest(pkg, manifest)
    with pytest.raises(ModelPackageError, match=rf"schema_version {SCHEMA_VERSION + 1}.*upgrade talkinghead.*re-export"):
        ModelPackage.load(pkg)
    manifest["schema_version"] = 0
    _write_manifest(pkg, manifest)
    with pytest.raises(ModelPackageError, match="re-export"):
        ModelPackage.load(pkg)


@pytest.mark.parametrize("path, message", [
    ("../generator.onnx", "leaves the package folder"),
    ("sub/../../generator.onnx", "leaves the package folder"),
    ("/tmp/generator.onnx", "absolute path"),
    ("C:/models/generator.onnx", "absolute path"),
    ("models\\generator.onnx", "backslash"),
])
def test_paths_that_leave_the_folder_are_refused(meta_package, tmp_path, path, message):
    pkg = _copy(meta_package, tmp_path / "pkg")
    manifest = _manifest(pkg)
    manifest["graphs"]["generator"]["file"] = path
    _write_manifest(pkg, manifest)
    with pytest.raises(ModelPackageError, match=rf"graphs\.generator\.file.*{message}"):
        ModelPackage.load(pkg)


def test_symlink_out_of_the_folder_is_refused(meta_package, tmp_path):
    pkg = _copy(meta_package, tmp_path / "pkg")
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(pkg / "generator.onnx", outside)  # same bytes, so only the path check can refuse it
    os.symlink(outside, pkg / "generator.onnx")
    with pytest.raises(ModelPackageError, match="outside the package folder"):
        ModelPackage.load(pkg)
    os.unlink(pkg / "generator.onnx")
    os.symlink("generator.int8.onnx", pkg / "generator.onnx")  # inside, but the wrong bytes
    with pytest.raises(ModelPackageError, match="sha256 mismatch"):
        ModelPackage.load(pkg)


def test_swapped_graph_files_are_caught_by_the_role_stamp(meta_package, tmp_path):
    pkg = _copy(meta_package, tmp_path / "pkg")
    manifest = _manifest(pkg)
    g = manifest["graphs"]
    g["embedder"]["file"], g["generator"]["file"] = g["generator"]["file"], g["embedder"]["file"]
    g["embedder"]["sha256"], g["generator"]["sha256"] = g["generator"]["sha256"], g["embedder"]["sha256"]
    _write_manifest(pkg, manifest)
    with pytest.raises(ModelPackageError, match="talkinghead.role"):
        ModelPackage.load(pkg)


def test_missing_folder_and_manifest(tmp_path):
    with pytest.raises(ModelPackageError, match="not found"):
        ModelPackage.load(tmp_path / "nope")
    with pytest.raises(ModelPackageError, match="no manifest.json"):
        ModelPackage.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelPackageError, match="not valid JSON"):
        ModelPackage.load(tmp_path)


# --------------------------------------------------------------------------------------------------
# The manifest rules, in Python and in the JSON Schema


def _mutations(valid: dict) -> list[tuple[str, dict]]:
    """(expected key in the error, invalid manifest) pairs."""
    out = []

    def mutate(key, fn):
        m = copy.deepcopy(valid)
        fn(m)
        out.append((key, m))

    mutate("colour", lambda m: m.update(colour="blue"))
    mutate("graphs.generator", lambda m: m["graphs"]["generator"].update(extra=1))
    mutate("graphs.generator.sha256", lambda m: m["graphs"]["generator"].update(sha256="abc"))
    mutate("resolution", lambda m: m.pop("resolution"))
    mutate("kind", lambda m: m.update(kind="other"))
    mutate("size", lambda m: m.update(size="huge"))
    mutate("graphs.embedder", lambda m: m["graphs"].pop("embedder"))
    mutate("graphs.generator.inputs", lambda m: m["graphs"]["generator"]["inputs"].pop())
    mutate("graphs.generator.inputs[0].shape[1]",
           lambda m: m["graphs"]["generator"]["inputs"][0]["shape"].__setitem__(1, 0))
    mutate("graphs.embedder.file", lambda m: m["graphs"]["embedder"].update(file="../embedder.onnx"))
    mutate("variants.int8.method", lambda m: m["variants"]["int8"].update(method="cast"))
    mutate("variants.fp16.error", lambda m: m["variants"]["fp16"]["error"].pop("ssim"))
    mutate("landmarks.count", lambda m: m["landmarks"].update(count=5))
    mutate("landmarks.crop.offset_y", lambda m: m["landmarks"]["crop"].update(offset_y=1.0))  # crop.py's (-1, 1)
    mutate("image.range", lambda m: m["image"].update(range=[0, 1]))
    mutate("parity.data.kind", lambda m: m["parity"]["data"].update(kind="imagined"))
    mutate("variants.fp32", lambda m: m["variants"].update(fp32=m["variants"]["int8"]))
    mutate("parity.pruned.blocks", lambda m: m["parity"].update(
        pruned={"blocks": "down_attn.1", "tolerance": 2e-3, "max_abs": 0.0, "mean_abs": 0.0}))
    mutate("parity.pruned.max_abs", lambda m: m["parity"].update(
        pruned={"blocks": ["down_attn.1"], "tolerance": 2e-3, "max_abs": -1.0, "mean_abs": 0.0}))
    return out


def test_manifest_errors_name_the_key(meta_package):
    valid = _manifest(meta_package)
    validate_manifest(valid)
    for key, bad in _mutations(valid):
        with pytest.raises(ModelPackageError) as info:
            validate_manifest(bad)
        assert key in str(info.value), (key, str(info.value))


def test_json_schema_agrees_with_validate_manifest(meta_package, personal_package):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for folder in (meta_package, personal_package):
        valid = _manifest(folder)
        validate_manifest(valid)
        assert not list(validator.iter_errors(valid))
    valid = _manifest(meta_package)
    for key, bad in _mutations(valid):
        if key == "graphs.generator.inputs[0].shape[1]":
            bad["graphs"]["generator"]["inputs"][0]["shape"][1] = "x-y"  # 0 vs 68 is Python-only
        with pytest.raises(ModelPackageError):
            validate_manifest(bad)
        assert list(validator.iter_errors(bad)), f"the JSON Schema accepts a manifest with a bad {key}"
    for bad_path in ("../x.onnx", "/x.onnx", "a//b.onnx", "./x.onnx", "a\\b.onnx", "C:/x.onnx"):
        m = copy.deepcopy(valid)
        m["graphs"]["generator"]["file"] = bad_path
        assert list(validator.iter_errors(m)), bad_path
        with pytest.raises(ModelPackageError):
            validate_manifest(m)
    for ok_path in ("sub/generator.onnx", "..generator.onnx", "g.v2.onnx"):
        m = copy.deepcopy(valid)
        m["graphs"]["generator"]["file"] = ok_path
        validate_manifest(m)
        assert not list(validator.iter_errors(m)), ok_path


# --------------------------------------------------------------------------------------------------


def test_ssim_matches_a_direct_implementation():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (1, 1, 16, 16))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1)
    x = np.arange(11) - 5.0
    g = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2, vals = (0.01 * 2) ** 2, (0.03 * 2) ** 2, []
    for i in range(6):
        for j in range(6):
            pa, pb = a[0, 0, i:i + 11, j:j + 11], b[0, 0, i:i + 11, j:j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * pa * pa).sum() - ma ** 2, (w * pb * pb).sum() - mb ** 2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    assert ssim(a, b) == pytest.approx(float(np.mean(vals)), abs=1e-12)
    assert ssim(a, a) == pytest.approx(1.0)


# Rebuilding the variants of a package (python -m export.package_variants)


def test_variants_rebuild_asks_before_replacing_and_updates_the_manifest(meta_package, calibration, tmp_path, capsys):
    folder = _copy(meta_package, tmp_path / "pkg")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    args = [str(folder), "--calibration", str(calibration), "--samples", "3"]
    assert variants_main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing touched
    assert variants_main(args + ["--overwrite"]) == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    int8 = manifest["variants"]["int8"]
    assert "over 3 samples" in int8["calibration"] and "feature maps <= 32 px" in int8["calibration"]
    assert int8["sha256"] != json.loads(before["manifest.json"])["variants"]["int8"]["sha256"]
    assert manifest["variants"]["fp16"] == json.loads(before["manifest.json"])["variants"]["fp16"]
    assert (folder / "generator.fp16.onnx").read_bytes() == before["generator.fp16.onnx"]
    pkg = ModelPackage.load(folder)  # hashes and role stamps check out
    pkg.check_session(_session(pkg.graph_path("generator", "int8")), "generator", "int8")
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)  # no temporary files left


def test_variants_rebuild_adds_a_variant_to_a_personalised_package(personal_package, calibration, tmp_path):
    folder = _copy(personal_package, tmp_path / "personal")
    assert ModelPackage.load(folder).variant_names("generator") == ()
    assert variants_main([str(folder), "--calibration", str(calibration), "--samples", "2"]) == 0
    pkg = ModelPackage.load(folder)
    assert pkg.variant_names("generator") == ("int8",)
    out = _session(pkg.graph_path("generator", "int8")).run(
        None, {"landmarks": np.zeros((1, 68, 2), np.float32)})[0]
    assert out.shape == (1, 3, 64, 64) and np.isfinite(out).all()


def test_variants_rebuild_names_a_folder_that_is_not_a_package(tmp_path, capsys):
    assert variants_main([str(tmp_path)]) == 2
    assert "not a loadable model package" in capsys.readouterr().err


def test_variants_rebuild_puts_everything_back_when_the_package_does_not_load(meta_package, calibration, tmp_path,
                                                                               monkeypatch, capsys):
    import export.package_variants as pv

    folder = _copy(meta_package, tmp_path / "pkg")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_load, calls = ModelPackage.load, []

    def load_then_fail(path, *args, **kwargs):  # the first load (the input) works, the check after fails
        calls.append(path)
        if len(calls) > 1:
            raise ModelPackageError("simulated: the rebuilt package is broken")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(pv.ModelPackage, "load", staticmethod(load_then_fail))
    args = [str(folder), "--calibration", str(calibration), "--samples", "2", "--overwrite"]
    assert variants_main(args) == 2
    assert "left as it was" in capsys.readouterr().err and len(calls) == 2
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # byte for byte, nothing left over


def test_variants_rebuild_refuses_synthetic_calibration(meta_package, tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("TALKINGHEAD_SHARED_DATA", str(tmp_path / "empty"))  # no faces to find: synthetic inputs
    folder = _copy(meta_package, tmp_path / "pkg")
    assert variants_main([str(folder), "--overwrite", "--samples", "2"]) == 2
    assert "no real face crops" in capsys.readouterr().err
    assert variants_main([str(folder), "--overwrite", "--samples", "2", "--allow-synthetic"]) == 0
    assert "synthetic" in json.loads((folder / "manifest.json").read_text())["variants"]["int8"]["calibration"]


def test_a_manifest_with_a_byte_order_mark_loads_as_in_the_cpp_core(meta_package, tmp_path):
    """RFC 8259 lets a parser ignore a UTF-8 BOM; the C++ core did and Python refused (issue 19)."""
    import shutil

    from talkinghead.package import ModelPackage

    copy_dir = tmp_path / "bom"
    shutil.copytree(meta_package, copy_dir)
    manifest = copy_dir / "manifest.json"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    assert ModelPackage.load(copy_dir).name == ModelPackage.load(meta_package).name

"""Write the manifest conformance corpus (contract/manifests/): valid and invalid manifests, each
invalid one with the stable code it must raise, the offending key's path (Python's
ModelPackageError.key, C++'s th::Error::key). pytest (tests/sdk/test_contract.py) and ctest
(test_core, no Python) read the same files. Re-run only when the contract changes:

    python contract/make_manifests.py

The base is the bundled model's manifest without its free-form ``quality`` section. Every case is
checked against the Python validator here: a case whose key Python does not give is a bug in the
case or in the validator, and the script stops.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "manifests"

Edit = Callable[[dict], Any]


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# name: (edit of the base manifest, the key it must be refused with)
INVALID: dict[str, tuple[Edit, str]] = {
    "unknown_top_key": (lambda m: m.update(colour="blue"), "(top level)"),
    "missing_resolution": (lambda m: m.pop("resolution"), "resolution"),
    "kind_other": (lambda m: m.update(kind="other"), "kind"),
    "size_huge": (lambda m: m.update(size="huge"), "size"),
    "family_unknown": (lambda m: m.update(family="morph"), "family"),
    "resolution_zero": (lambda m: m.update(resolution=0), "resolution"),
    "embedding_dim_negative": (lambda m: m.update(embedding_dim=-1), "embedding_dim"),
    "landmark_count_5": (lambda m: m["landmarks"].update(count=5), "landmarks.count"),
    "crop_offset_y_1": (lambda m: m["landmarks"]["crop"].update(offset_y=1.0), "landmarks.crop.offset_y"),
    "crop_offset_y_minus_1": (lambda m: m["landmarks"]["crop"].update(offset_y=-1), "landmarks.crop.offset_y"),
    "crop_scale_0": (lambda m: m["landmarks"]["crop"].update(scale=0), "landmarks.crop.scale"),
    "crop_unknown_key": (lambda m: m["landmarks"]["crop"].update(rotate=0), "landmarks.crop"),
    "image_range_0_1": (lambda m: m["image"].update(range=[0, 1]), "image.range"),
    "generator_sha256_short": (lambda m: m["graphs"]["generator"].update(sha256="abc"), "graphs.generator.sha256"),
    "generator_file_outside": (lambda m: m["graphs"]["generator"].update(file="../generator.onnx"),
                               "graphs.generator.file"),
    "generator_file_absolute": (lambda m: m["graphs"]["generator"].update(file="/generator.onnx"),
                                "graphs.generator.file"),
    "generator_input_dtype": (lambda m: m["graphs"]["generator"]["inputs"][0].update(dtype="float16"),
                              "graphs.generator.inputs[0].dtype"),
    "generator_opset_text": (lambda m: m["graphs"]["generator"].update(opset="17"), "graphs.generator.opset"),
    "variant_method_cast": (lambda m: m["variants"]["int8"].update(method="cast"), "variants.int8.method"),
    "variant_error_missing_ssim": (lambda m: m["variants"]["fp16"]["error"].pop("ssim"), "variants.fp16.error.ssim"),
    "variant_named_fp32": (lambda m: m["variants"].update(fp32=copy.deepcopy(m["variants"]["int8"])), "variants.fp32"),
    "references_cap_33": (lambda m: m["references"].update(cap=33), "references.cap"),
    "references_cap_0": (lambda m: m["references"].update(cap=0), "references.cap"),
    "references_selection": (lambda m: m["references"].update(selection="random"), "references.selection"),
    "schema_version_99": (lambda m: m.update(schema_version=99), "schema_version"),
    "schema_version_text": (lambda m: m.update(schema_version="2"), "schema_version"),
    "schema_version_missing": (lambda m: m.pop("schema_version"), "schema_version"),
    "schema_version_0": (lambda m: m.update(schema_version=0), "schema_version"),
    "parity_tolerance_negative": (lambda m: m["parity"].update(tolerance=-1.0), "parity.tolerance"),
}
# name: (raw text, the key): cases that are not an edit of a valid object
INVALID_TEXT: dict[str, tuple[str, str]] = {
    "not_json": ('{"schema_version": 2,', "(json)"),
    "top_level_array": ("[1, 2]", "(top level)"),
    "nested_40_deep": ("", "(json)"),  # the base with a 40-deep list in its free-form quality section
}
VALID: dict[str, Edit | None] = {
    "bundled": None,
    "crop_offset_y_0_99": lambda m: m["landmarks"]["crop"].update(offset_y=0.99),
    "nested_30_deep_quality": lambda m: m.update(quality={"deep": _nested(28)}),
}


def main() -> None:
    from talkinghead.errors import ModelPackageError
    from talkinghead.manifest import validate_manifest
    from talkinghead.package import parse_manifest_json

    base = json.loads((REPO / "sdk/talkinghead/models/default/manifest.json").read_text())
    base.pop("quality", None)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    cases: dict[str, dict] = {}

    def write(name: str, text: bytes, key: str | None) -> None:
        try:
            validate_manifest(parse_manifest_json(text))
            got = None
        except ModelPackageError as exc:
            got = exc.key
        if got != key:
            raise SystemExit(f"case {name}: the Python validator gives key {got!r}, the case says {key!r}")
        (OUT / f"{name}.json").write_bytes(text)
        cases[name] = {"file": f"{name}.json", "valid": key is None, **({"key": key} if key else {})}

    def dump(m: dict) -> bytes:
        return json.dumps(m, separators=(",", ":")).encode()

    for name, edit in VALID.items():
        m = copy.deepcopy(base)
        if edit:
            edit(m)
        write(name, dump(m), None)
    write("bundled_with_bom", b"\xef\xbb\xbf" + dump(base), None)
    for name, (edit, key) in INVALID.items():
        m = copy.deepcopy(base)
        edit(m)
        write(name, dump(m), key)
    for name, (text, key) in INVALID_TEXT.items():
        if name == "nested_40_deep":
            m = copy.deepcopy(base)
            m["quality"] = {"deep": _nested(40)}
            text = dump(m).decode()
        write(name, text.encode(), key)
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    valid = sum(c["valid"] for c in cases.values())
    print(f"{OUT.relative_to(REPO)}: {valid} valid and {len(cases) - valid} invalid manifests")


if __name__ == "__main__":
    main()

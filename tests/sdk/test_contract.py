"""The manifest conformance corpus (contract/manifests, written by contract/make_manifests.py): the
Python validator accepts every valid case and refuses every invalid one with its recorded key. The
C++ core reads the same files in test_core (no Python there), so the two validators agree by code,
not by message text."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from talkinghead.errors import ModelPackageError
from talkinghead.manifest import validate_manifest
from talkinghead.package import parse_manifest_json

CORPUS = Path(__file__).resolve().parents[2] / "contract" / "manifests"
CASES = json.loads((CORPUS / "cases.json").read_text())


def test_the_corpus_has_both_kinds() -> None:
    assert sum(c["valid"] for c in CASES.values()) >= 3 and sum(not c["valid"] for c in CASES.values()) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_python_validator_follows_the_corpus(name: str) -> None:
    case = CASES[name]
    data = (CORPUS / case["file"]).read_bytes()
    if case["valid"]:
        validate_manifest(parse_manifest_json(data))
    else:
        with pytest.raises(ModelPackageError) as info:
            validate_manifest(parse_manifest_json(data))
        assert info.value.key == case["key"], str(info.value)

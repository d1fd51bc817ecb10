"""C2PA manifests on written files (issue 22): signed with a test certificate chain made here, reported
by `talkinghead verify` as valid, and as invalid once the file is altered; without the provenance
extra, asking for signing names the extra."""
from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.errors import InputError, MissingDependencyError
from talkinghead.provenance import C2paSigning, c2pa_status, sign_c2pa, verify
from talkinghead.video import VideoWriter

pytest.importorskip("c2pa")
x509 = pytest.importorskip("cryptography.x509")


def _name(common_name: str):
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "talkinghead tests")])


def _usage(signer: bool):
    """Key usage: a CA signs certificates; the signing certificate signs (what C2PA checks)."""
    return x509.KeyUsage(digital_signature=signer, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not signer,
                         crl_sign=not signer, encipher_only=False, decipher_only=False)


def _certificate(subject: str, key, issuer, issuer_key, signer: bool):
    """One certificate of the test chain (P-256, SHA-256, valid from yesterday for 30 days). C2PA
    refuses a self-signed signing certificate and wants digitalSignature plus an extended key usage
    it accepts (email protection here) on it, so the chain is a test CA and a signer it issued."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=not signer, path_length=None), critical=True)
         .add_extension(_usage(signer), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if signer:
        b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def signing(tmp_path_factory) -> C2paSigning:
    """A signing key and its chain (signer, then the test CA) as PEM files."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("c2pa")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("talkinghead test CA", ca_key, _name("talkinghead test CA"), ca_key, signer=False)
    leaf = _certificate("talkinghead test signer", key, ca.subject, ca_key, signer=True)
    pem = serialization.Encoding.PEM
    (folder / "certs.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return C2paSigning(folder / "key.pem", folder / "certs.pem")


def _tamper(path: Path, out: Path) -> Path:
    """A copy of ``path`` with one byte of its content (three quarters in) changed."""
    data = bytearray(path.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def test_a_signed_demo_verifies_valid_and_a_tampered_copy_invalid(signing: C2paSigning, tmp_path: Path, capsys) -> None:
    out = tmp_path / "signed.mp4"
    assert main(["demo", "-o", str(out), "--seconds", "2", "-q",
                 "--c2pa-key", str(signing.key), "--c2pa-cert", str(signing.cert)]) == 0
    rc = main(["verify", "--json", str(out), str(_tamper(out, tmp_path / "tampered.mp4"))])
    good, bad = json.loads(capsys.readouterr().out)
    assert rc == 0 and good["found"] and good["synthetic_tag"] and good["c2pa"] == "valid", good
    assert bad["c2pa"] == "invalid" and bad["c2pa_detail"], bad
    main(["verify", str(out)])
    assert "C2PA valid" in capsys.readouterr().out


def test_an_unsigned_file_reports_c2pa_absent(tmp_path: Path) -> None:
    out = tmp_path / "plain.mp4"
    with VideoWriter(out, fps=25) as w:
        for i in range(5):
            w.write(np.full((64, 64, 3), 40 * i, np.uint8))
    assert verify(out).c2pa == "absent"


def test_an_image_signed_through_the_python_api(signing: C2paSigning, tmp_path: Path) -> None:
    from talkinghead.media import encode_image

    image = tmp_path / "frame.png"
    image.write_bytes(encode_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    sign_c2pa(image, signing, {"talkinghead_synthetic": "true"})
    assert c2pa_status(image) == ("valid", "Valid")
    v = verify(image)
    assert v.error is None and v.c2pa == "valid"


def test_signing_asks_for_both_files_and_a_known_algorithm(signing: C2paSigning, tmp_path: Path, capsys) -> None:
    assert main(["demo", "-o", str(tmp_path / "x.mp4"), "-q", "--c2pa-key", str(signing.key)]) == 2
    assert "--c2pa-cert" in capsys.readouterr().err
    with pytest.raises(InputError, match="algorithm"):
        C2paSigning(signing.key, signing.cert, "md5").check()
    with pytest.raises(InputError, match="C2PA signing takes"):
        VideoWriter(tmp_path / "x.mkv", fps=25, c2pa=signing)


def test_without_the_extra_signing_names_it(signing: C2paSigning, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa now fails as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"talkinghead\[provenance\]"):
        signing.check()
    assert main(["demo", "-o", str(tmp_path / "x.mp4"), "-q", "--c2pa-key", str(signing.key),
                 "--c2pa-cert", str(signing.cert)]) == 2
    assert "talkinghead[provenance]" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
    assert c2pa_status(tmp_path / "x.mp4")[0] == "unchecked"

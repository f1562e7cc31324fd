"""Content credentials (avgen.provenance): every MP4 that `.save()` writes carries a signed C2PA manifest that the CAI's
own reader (c2pa.Reader) reads back with the right digital source type and action; changed video bytes fail its
validation; signing with the user's certificate, without any, or not at all; a failed signature leaves no file; and
`avgen inspect` prints what a file says about itself. The tests' cache folder is a temporary one (tests/conftest.py)."""

import json
import os
import stat

import c2pa
import numpy as np
import pytest

from avgen import muxer, provenance
from avgen.cli import main
from avgen.outputs import AVGenOutput

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
METADATA = {"generator": "avgen", "model_version": "0.1.0", "pipeline": "AVGenPipeline", "prompt": "a red ball bounces",
            "seed": 3, "model": "/somewhere/weights/tiny"}  # fmt: skip


def clip(metadata=METADATA) -> AVGenOutput:
    frames = np.random.default_rng(0).random((1, 12, 32, 32, 3), dtype=np.float32)
    audio = 0.3 * np.sin(np.arange(8000, dtype=np.float32) / 7)[None, None]
    return AVGenOutput(frames=frames, audio=audio, fps=24, sample_rate=16000, metadata=[dict(metadata)])


def manifest(path) -> tuple[str, dict, list]:
    """(validation state, active manifest, validation failure codes) as c2pa.Reader reads them."""
    with open(path, "rb") as stream, c2pa.Reader("video/mp4", stream) as reader:
        results = reader.get_validation_results()["activeManifest"]
        return reader.get_validation_state(), reader.get_active_manifest(), [item["code"] for item in results["failure"]]


def generation(active: dict) -> dict:
    return next(a["data"] for a in active["assertions"] if a["label"] == provenance.ASSERTION)


def test_a_saved_clip_carries_a_signed_manifest_of_a_creation(tmp_path):
    path = clip().save(tmp_path / "out.mp4")
    state, active, failures = manifest(path)
    assert state == "Valid" and failures == ["signingCredential.untrusted"]  # the signature and hashes check
    [created] = provenance.actions_of(active)
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == IPTC + "trainedAlgorithmicMedia"
    assert created["softwareAgent"]["name"] == "avgen" and active["claim_generator_info"][0]["name"] == "avgen"
    details = generation(active)
    assert (details["model"], details["model_version"], details["pipeline"], details["seed"]) == ("tiny", "0.1.0", "AVGenPipeline", 3)
    assert "a red ball" not in json.dumps(active)  # the prompt stays out unless asked for; the MP4 tags keep it
    assert muxer.read_video(path).metadata["prompt"] == "a red ball bounces"
    assert "development" in active["signature_info"]["issuer"] and "NOT a trusted" in active["signature_info"]["issuer"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary file left

    with_prompt = clip().save(tmp_path / "prompt.mp4", include_prompt=True)
    assert generation(manifest(with_prompt)[1])["prompt"] == "a red ball bounces"


def test_the_development_certificate_is_made_once_in_the_cache_and_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv("AVGEN_CACHE_DIR", str(tmp_path / "cache"))
    first = provenance.resolve_credentials()
    folder = tmp_path / "cache" / provenance.DEV_FOLDER
    assert first.development and sorted(p.name for p in folder.iterdir()) == ["README.txt", "certificate.pem", "key.pem"]
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600 and "LOCAL DEVELOPMENT" in (folder / "README.txt").read_text()
    assert provenance.resolve_credentials() == first  # made on first use only


def test_changing_the_video_bytes_fails_validation(tmp_path):
    path = clip().save(tmp_path / "out.mp4")
    data = bytearray(path.read_bytes())
    data[data.index(b"mdat") + 500] ^= 0xFF  # one byte of the encoded pictures
    (tmp_path / "tampered.mp4").write_bytes(data)
    state, _, failures = manifest(tmp_path / "tampered.mp4")
    assert state == "Invalid" and "assertion.bmffHash.mismatch" in failures
    assert main(["inspect", str(tmp_path / "tampered.mp4")]) == 1  # inspect says so in its exit status


def own_credentials(tmp_path):
    """A certificate chain and key of the user's own (made here as the development ones are), as files."""
    provenance._make_development_credentials(tmp_path / "mine")
    return tmp_path / "mine" / "certificate.pem", tmp_path / "mine" / "key.pem"


def serial(certificate_file) -> str:
    from cryptography import x509

    return str(x509.load_pem_x509_certificates(certificate_file.read_bytes())[0].serial_number)


def test_the_users_certificate_signs_from_the_environment_or_an_option(tmp_path, monkeypatch):
    cert, key = own_credentials(tmp_path)
    monkeypatch.setenv("AVGEN_C2PA_CERT", str(cert))
    monkeypatch.setenv("AVGEN_C2PA_KEY", str(key))
    path = clip().save(tmp_path / "env.mp4")
    assert manifest(path)[1]["signature_info"]["cert_serial_number"] == serial(cert)
    monkeypatch.delenv("AVGEN_C2PA_KEY")
    with pytest.raises(provenance.CredentialsError, match="AVGEN_C2PA_CERT and AVGEN_C2PA_KEY go together"):
        clip().save(tmp_path / "half.mp4")
    monkeypatch.delenv("AVGEN_C2PA_CERT")
    path = clip().save(tmp_path / "option.mp4", credentials=provenance.Credentials.from_files(cert, key))
    assert manifest(path)[1]["signature_info"]["cert_serial_number"] == serial(cert)


def test_no_credentials_writes_no_manifest(tmp_path, monkeypatch):
    unsigned = clip().save(tmp_path / "none.mp4", credentials=None)
    monkeypatch.setenv("AVGEN_NO_CREDENTIALS", "1")
    for path in (unsigned, clip().save(tmp_path / "env-off.mp4")):
        assert provenance.read_credentials(path) is None and muxer.read_video(path).frames.shape == (12, 32, 32, 3)


def test_bad_credentials_or_a_failed_signature_leave_no_file(tmp_path):
    cert, key = own_credentials(tmp_path)
    other_cert, other_key = own_credentials(tmp_path / "other")
    with pytest.raises(provenance.CredentialsError, match="does not belong to the certificate"):
        provenance.Credentials.from_files(cert, other_key)  # refused before anything is made with it
    target = clip().save(tmp_path / "out.mp4", credentials=None)
    before = target.read_bytes()
    mismatched = provenance.Credentials(cert.read_bytes(), other_key.read_bytes(), "es256")  # unchecked: fails at signing
    with pytest.raises(provenance.CredentialsError, match="signing the C2PA manifest failed"):
        clip().save(target, credentials=mismatched)

    def failing(unsigned, signed, title):
        signed.write_bytes(b"half a manifest")
        raise RuntimeError("the signer went away")

    with pytest.raises(RuntimeError, match="went away"):
        muxer.write_video(target, np.zeros((8, 16, 16, 3), np.uint8), 24, sign=failing)
    assert target.read_bytes() == before  # the old file intact, and no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "other", "out.mp4"]


def test_an_edit_is_a_composite_with_the_users_video_as_parent(tmp_path):
    source = clip().save(tmp_path / "source.mp4")  # itself signed: the ingredient carries its manifest
    edited = clip({"generator": "avgen", "pipeline": "VideoEditPipeline", "instruction": "make the ball blue"})
    path = edited.save(tmp_path / "edited.mp4", source=source)
    state, active, _ = manifest(path)
    opened, edit = provenance.actions_of(active)
    assert state == "Valid" and opened["action"] == "c2pa.opened" and edit["action"] == "c2pa.edited"
    assert edit["digitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    [parent] = active["ingredients"]
    assert parent["title"] == "source.mp4" and parent["relationship"] == "parentOf" and parent["active_manifest"]
    assert "make the ball" not in json.dumps(active)
    # without the source file (a pipeline's frames), the parent is named only
    state, active, _ = manifest(edited.save(tmp_path / "unnamed.mp4"))
    assert state == "Valid" and active["ingredients"][0]["title"] == "source video"


def test_inspect_prints_the_manifest_the_tags_and_the_exact_durations(tmp_path, capsys):
    path = clip().save(tmp_path / "out.mp4")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "validation: Valid" in out and "c2pa.created  source type: trainedAlgorithmicMedia" in out
    assert "prompt: a red ball bounces" in out  # the tags
    assert "12 frames = 0.5 s (1/2 s exactly)" in out and "8000 samples = 0.5 s (1/2 s exactly)" in out
    assert main(["inspect", str(path), "--json"]) == 0
    store = json.loads(capsys.readouterr().out)
    assert store["active_manifest"] in store["manifests"]
    plain = clip().save(tmp_path / "plain.mp4", credentials=None)
    assert main(["inspect", str(plain)]) == 0 and "no C2PA manifest" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "missing.mp4")]) == 2

"""Release manifests and signatures: what a box accepts and what it refuses, and why."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from protocols.release import (
    REASONS,
    Manifest,
    ReleaseFile,
    ReleaseRefused,
    check_file,
    check_upgrade,
    key_id,
    load_public_key,
    make_manifest,
    parse_update_command,
    parse_update_report,
    parse_version,
    public_key_text,
    sign_manifest,
    update_command,
    update_report,
    verify_manifest,
)

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
H = "ab" * 32


def manifest(version: str = "0.2.0", min_config: int = 1) -> Manifest:
    files = [ReleaseFile(f"paidui-{version}-py3-none-any.whl", H, 1000),
             ReleaseFile("pip-24.0-py3-none-any.whl", "cd" * 32, 2000),
             ReleaseFile("pydantic-2.7.0-py3-none-any.whl", "ef" * 32, 3000)]
    return make_manifest(version, files, installer="pip-24.0-py3-none-any.whl",
                         created_at=dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC),
                         min_config_version=min_config)


def refused(exc: pytest.ExceptionInfo[ReleaseRefused]) -> str:
    return exc.value.code


def test_signed_manifest_verifies_and_round_trips() -> None:
    m = manifest()
    data = m.to_bytes()
    got = verify_manifest(data, sign_manifest(data, KEY), [OTHER.public_key(), KEY.public_key()])
    assert got == m
    assert got.box_wheel.name == "paidui-0.2.0-py3-none-any.whl"
    assert got.total_size == 6000
    assert json.loads(data)["created_at"] == "2026-11-25T02:00:00Z"


@pytest.mark.parametrize(("sig", "code"), [(None, "unsigned"), (b"", "unsigned"),
                                           (b"   \n", "unsigned"), (b"garbage", "bad_signature"),
                                           (b'{"alg": "rsa"}', "bad_signature"),
                                           (b'{"alg": "ed25519", "key_id": "x", "sig": "!!"}',
                                            "bad_signature")])
def test_unsigned_or_malformed_signature_is_refused(sig: bytes | None, code: str) -> None:
    with pytest.raises(ReleaseRefused) as exc:
        verify_manifest(manifest().to_bytes(), sig, [KEY.public_key()])
    assert refused(exc) == code
    assert exc.value.message  # Chinese words for the centre's screen


def test_a_signature_by_another_key_is_refused_as_unknown_key() -> None:
    data = manifest().to_bytes()
    with pytest.raises(ReleaseRefused) as exc:
        verify_manifest(data, sign_manifest(data, OTHER), [KEY.public_key()])
    assert refused(exc) == "unknown_key"
    assert key_id(OTHER.public_key()) in exc.value.message_en


def test_a_changed_manifest_is_refused_as_tampered() -> None:
    data = manifest().to_bytes()
    sig = sign_manifest(data, KEY)
    changed = data.replace(b'"size":1000', b'"size":1001')
    assert changed != data
    with pytest.raises(ReleaseRefused) as exc:
        verify_manifest(changed, sig, [KEY.public_key()])
    assert refused(exc) == "tampered"


def test_a_signature_claiming_the_trusted_key_id_but_made_by_another_key_is_tampered() -> None:
    data = manifest().to_bytes()
    forged = json.loads(sign_manifest(data, OTHER))
    forged["key_id"] = key_id(KEY.public_key())
    with pytest.raises(ReleaseRefused) as exc:
        verify_manifest(data, json.dumps(forged).encode(), [KEY.public_key()])
    assert refused(exc) == "tampered"


@pytest.mark.parametrize(("running", "rollback", "code"), [
    ("0.3.0", False, "downgrade"), ("0.2.0", False, "same_version"),
    ("0.2.0", True, "same_version"), ("0.2.0rc1", False, None), ("0.1.9", False, None),
    ("0.3.0", True, None),
])
def test_version_rules(running: str, rollback: bool, code: str | None) -> None:
    if code is None:
        check_upgrade(manifest("0.2.0"), running, rollback=rollback)
        return
    with pytest.raises(ReleaseRefused) as exc:
        check_upgrade(manifest("0.2.0"), running, rollback=rollback)
    assert refused(exc) == code


def test_a_release_needing_a_newer_config_is_refused() -> None:
    with pytest.raises(ReleaseRefused) as exc:
        check_upgrade(manifest(min_config=3), "0.1.0", config_version=2)
    assert refused(exc) == "config_too_old"
    assert "3" in exc.value.message_en and "2" in exc.value.message_en


def test_file_checks() -> None:
    entry = ReleaseFile("a.whl", H, 10)
    check_file(entry, H, 10)
    with pytest.raises(ReleaseRefused, match="size_mismatch"):
        check_file(entry, H, 11)
    with pytest.raises(ReleaseRefused, match="hash_mismatch"):
        check_file(entry, "00" * 32, 10)


@pytest.mark.parametrize(("mutate", "why"), [
    (lambda m: m.update(format=2), "format"),
    (lambda m: m.update(files=[]), "files"),
    (lambda m: m["files"].append(dict(m["files"][0])), "twice"),
    (lambda m: m["files"][0].update(name="../../etc/passwd"), "plain file name"),
    (lambda m: m["files"][0].update(sha256="XYZ"), "sha256"),
    (lambda m: m.update(installer="setuptools-1-py3-none-any.whl"), "installer"),
    (lambda m: m.update(version="latest"), "release version"),
    (lambda m: m.update(version="0.3.0"), "no paidui-0.3.0 wheel"),
    (lambda m: m.pop("min_config_version"), "missing"),
    (lambda m: m.update(min_config_version=True), "whole number"),
])
def test_malformed_manifests_are_refused_with_the_reason(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    raw = manifest().to_json()
    mutate(raw)
    with pytest.raises(ReleaseRefused) as exc:
        Manifest.from_bytes(json.dumps(raw).encode())
    assert refused(exc) == "bad_manifest"
    assert why in exc.value.message_en


@given(st.binary(max_size=400))
def test_any_bytes_as_manifest_never_crash(data: bytes) -> None:
    try:
        Manifest.from_bytes(data)
    except ReleaseRefused as exc:
        assert exc.code == "bad_manifest"


@given(st.binary(max_size=200))
def test_any_bytes_as_signature_never_crash(sig: bytes) -> None:
    try:
        verify_manifest(manifest().to_bytes(), sig, [KEY.public_key()])
    except ReleaseRefused as exc:
        assert exc.code in ("unsigned", "bad_signature", "unknown_key", "tampered")


def test_versions_sort_like_releases() -> None:
    ordered = ["0.1", "0.1.1", "0.2.0a1", "0.2.0b2", "0.2.0rc1", "0.2.0", "0.10.0", "1.0.0"]
    assert sorted(ordered, key=parse_version) == ordered
    assert parse_version("1.2") == parse_version("1.2.0")
    for bad in ("", "v1.2", "1.2.3.dev1", "1.2+local", "1..2", "1.2.3.4.5"):
        with pytest.raises(ValueError):
            parse_version(bad)


def test_public_keys_load_from_pem_or_base64() -> None:
    pem = public_key_text(KEY.public_key())
    assert key_id(load_public_key(pem)) == key_id(KEY.public_key())
    raw = load_public_key(pem).public_bytes_raw()
    import base64

    assert key_id(load_public_key(base64.b64encode(raw))) == key_id(KEY.public_key())
    for bad in ("not a key", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            load_public_key(bad)


def test_update_command_round_trip_and_bad_commands() -> None:
    msg = update_command("update-0.2.0-7", "0.2.0", "http://centre:8000/api/releases/0.2.0/"
                         "manifest.json")
    offer = parse_update_command(msg)
    assert (offer.id, offer.version, offer.rollback) == ("update-0.2.0-7", "0.2.0", False)
    assert parse_update_command({**msg, "rollback": True}).rollback
    for bad in (None, [], {**msg, "id": ""}, {**msg, "version": "latest"},
                {**msg, "manifest_url": "ftp://x/y"}, {**msg, "rollback": "yes"},
                {k: v for k, v in msg.items() if k != "manifest_url"}):
        with pytest.raises(ReleaseRefused) as exc:
            parse_update_command(bad)
        assert refused(exc) == "bad_command"


def test_reports_carry_status_reason_and_words() -> None:
    r = update_report("c1", "0.2.0", "rolled_back", running="0.1.0", at=1.0,
                      reason="health_failed", detail="no answer")
    assert parse_update_report(r) is r
    assert r["message"] == REASONS["health_failed"][0]
    with pytest.raises(ValueError):
        update_report("c1", "0.2.0", "exploded", running="0.1.0", at=1.0)
    for bad in ({**r, "status": "x"}, {**r, "version": 2}, {**r, "reason": "x"},
                {**r, "at": "now"}, "text"):
        with pytest.raises(ValueError):
            parse_update_report(bad)

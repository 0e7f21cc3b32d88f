"""syscontainers.trust.gpg against real gpg keys and real `skopeo standalone-sign` signatures,
with `skopeo standalone-verify` as the oracle for what verifies."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syscontainers.errors import PolicyError
from syscontainers.process import run
from syscontainers.trust.gpg import verify_signed_message
from syscontainers.trust.simple_signing import manifest_matches, parse_payload

pytestmark = pytest.mark.skipif(
    not (shutil.which("gpg") and shutil.which("skopeo")), reason="needs gpg and skopeo"
)

REF = "example.com/app:1"
WHAT = f"signature 1 of {REF}"
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}\n'
DAY = 86400


@dataclass(frozen=True)
class Key:
    fingerprint: str
    binary: bytes  # gpg --export
    armored: bytes  # gpg --export --armor


@dataclass(frozen=True)
class Keys:
    home: Path  # GNUPGHOME with the secret keys
    manifest: Path
    signer: Key
    other: Key
    expired: Key  # expired a day after it was made, two days ago
    subkeyed: Key  # certify-only primary with a signing subkey

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.home)}

    def gpg(self, *args: str) -> str:
        return run(["gpg", "--batch", "--passphrase", "", *args], env=self.env).stdout

    def sign(self, key: Key, ref: str = REF) -> bytes:
        """A simple-signing signature made by skopeo with KEY for the manifest as REF."""
        out = self.home / "sig.tmp"
        run(["skopeo", "standalone-sign", str(self.manifest), ref, key.fingerprint, "-o", str(out)],
            env=self.env)  # fmt: skip
        data = out.read_bytes()
        out.unlink()
        return data

    def skopeo_verifies(self, signature: bytes, key: Key) -> bool:
        sig = self.home / "verify.tmp"
        sig.write_bytes(signature)
        argv = ["skopeo", "standalone-verify", str(self.manifest), REF, key.fingerprint, str(sig)]
        result = run(argv, env=self.env, check=False)
        sig.unlink()
        return result.returncode == 0


def make_key(keys_home: Path, env: dict[str, str], uid: str, *spec: str, at: int = 0) -> Key:
    gpg = ["gpg", "--batch", "--passphrase", ""]
    if at:
        gpg += ["--faked-system-time", f"{at}!"]
    run([*gpg, "--quick-gen-key", uid, *spec], env=env)
    listing = run(["gpg", "--with-colons", "--list-keys", uid], env=env).stdout
    fprs = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")]
    fingerprint = fprs[0]
    binary = keys_home / f"{fingerprint}.gpg"
    armored = keys_home / f"{fingerprint}.asc"
    run(["gpg", "--batch", "--yes", "--output", str(binary), "--export", fingerprint], env=env)
    run(["gpg", "--batch", "--yes", "--armor", "--output", str(armored), "--export", fingerprint],
        env=env)  # fmt: skip
    return Key(fingerprint, binary.read_bytes(), armored.read_bytes())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    base = tmp_path_factory.mktemp("trust-gpg")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    now = int(time.time())
    signer = make_key(base, env, "Test Signer <signer@example.org>", "ed25519", "sign", "never")
    other = make_key(base, env, "Other Signer <other@example.org>", "ed25519", "sign", "never")
    expired = make_key(base, env, "Expired <expired@example.org>", "ed25519", "sign", "1d",
                       at=now - 3 * DAY)  # fmt: skip
    primary = make_key(base, env, "Subkeyed <sub@example.org>", "ed25519", "cert", "never")
    run(["gpg", "--batch", "--passphrase", "", "--quick-add-key", primary.fingerprint, "ed25519",
         "sign", "never"], env=env)  # fmt: skip
    exported = run(["gpg", "--export", "--armor", primary.fingerprint], env=env).stdout.encode()
    subkeyed = Key(primary.fingerprint, exported, exported)
    manifest = base / "manifest.json"
    manifest.write_bytes(MANIFEST)
    yield Keys(home, manifest, signer, other, expired, subkeyed)
    run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that tempfile uses for this test, to see what is left behind."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def refused(signature: bytes, keyrings: list[bytes], *fragments: str) -> PolicyError:
    with pytest.raises(PolicyError) as err:
        verify_signed_message(signature, keyrings, WHAT)
    assert WHAT in err.value.message
    for fragment in fragments:
        assert fragment in err.value.message
    assert err.value.hint
    return err.value


@pytest.mark.parametrize("form", ["binary", "armored"])
def test_good_signature_verifies(keys: Keys, form: str, scratch: Path) -> None:
    signature = keys.sign(keys.signer)
    keyring = keys.signer.binary if form == "binary" else keys.signer.armored
    verified = verify_signed_message(signature, [keyring], WHAT)
    assert verified.signer == keys.signer.fingerprint
    claim = parse_payload(verified.payload, WHAT)
    assert claim.docker_reference == REF
    digest = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert manifest_matches(claim, MANIFEST, digest)
    assert keys.skopeo_verifies(signature, keys.signer)
    assert list(scratch.iterdir()) == []


def test_any_of_several_keyrings_and_keys_may_sign(keys: Keys) -> None:
    both = keys.signer.armored + keys.other.armored  # two keys in one armored keyring
    for key in (keys.signer, keys.other):
        verified = verify_signed_message(keys.sign(key), [keys.expired.binary, both], WHAT)
        assert verified.signer == key.fingerprint


def test_signed_by_another_key_is_refused(keys: Keys) -> None:
    signature = keys.sign(keys.other)
    error = refused(signature, [keys.signer.binary], keys.other.fingerprint, "does not trust")
    assert "keyPath" in (error.hint or "")
    assert not keys.skopeo_verifies(signature, keys.signer)


def test_a_signing_subkey_counts_for_its_primary_key(keys: Keys) -> None:
    signature = keys.sign(keys.subkeyed)
    verified = verify_signed_message(signature, [keys.subkeyed.binary], WHAT)
    assert verified.signer == keys.subkeyed.fingerprint
    listing = run(["gpg", "--with-colons", "--list-keys", keys.subkeyed.fingerprint],
                  env=keys.env).stdout  # fmt: skip
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")]
    assert fingerprints[0] == keys.subkeyed.fingerprint and len(fingerprints) == 2
    # skopeo 1.9 predates containers/image accepting subkey signatures for the primary key
    # ("Also accept subkey signatures in simple signing"), so ask it about the subkey.
    subkey = Key(fingerprints[1], b"", b"")
    assert keys.skopeo_verifies(signature, subkey)


@pytest.mark.parametrize("offset", [-5, -20, -40])
def test_flipped_signature_byte_is_refused(keys: Keys, offset: int) -> None:
    signature = bytearray(keys.sign(keys.signer))
    signature[offset] ^= 0x01
    refused(bytes(signature), [keys.signer.binary])
    assert not keys.skopeo_verifies(bytes(signature), keys.signer)


def test_any_flipped_byte_is_refused_or_changes_nothing_signed(keys: Keys, scratch: Path) -> None:
    original = keys.sign(keys.signer)
    payload = verify_signed_message(original, [keys.signer.binary], WHAT).payload
    for offset in range(0, len(original), max(1, len(original) // 12)):
        damaged = bytearray(original)
        damaged[offset] ^= 0x10
        try:
            verified = verify_signed_message(bytes(damaged), [keys.signer.binary], WHAT)
        except PolicyError as e:
            assert WHAT in e.message
        else:  # only unsigned literal-packet metadata (file name, date) can change harmlessly
            assert verified.payload == payload, offset
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not a signature at all", b"\x00" * 64, b"-----BEGIN PGP MESSAGE-----\n\nxx\n"],
)
def test_garbage_is_refused(keys: Keys, garbage: bytes) -> None:
    refused(garbage, [keys.signer.binary], "not a valid OpenPGP signed message")


def test_detached_signature_is_refused(keys: Keys) -> None:
    detached = keys.home / "payload.sig"
    run(["gpg", "--batch", "--yes", "-u", keys.signer.fingerprint, "--output", str(detached),
         "--detach-sign", str(keys.manifest)], env=keys.env)  # fmt: skip
    refused(detached.read_bytes(), [keys.signer.binary])


def test_encrypted_message_is_refused(keys: Keys) -> None:
    encrypted = keys.home / "sym.gpg"
    run(["gpg", "--batch", "--yes", "--passphrase", "x", "--pinentry-mode", "loopback",
         "--output", str(encrypted), "--symmetric", str(keys.manifest)], env=keys.env)  # fmt: skip
    refused(encrypted.read_bytes(), [keys.signer.binary], "encrypted")


def test_two_signatures_are_refused(keys: Keys) -> None:
    message = keys.home / "two.gpg"
    run(["gpg", "--batch", "--yes", "-u", keys.signer.fingerprint, "-u", keys.other.fingerprint,
         "--output", str(message), "--sign", str(keys.manifest)], env=keys.env)  # fmt: skip
    refused(message.read_bytes(), [keys.signer.binary, keys.other.binary], "2 signatures")


def test_expired_key_is_refused(keys: Keys) -> None:
    message = keys.home / "expired.gpg"
    signed_at = int(time.time()) - 3 * DAY + 3600  # an hour after it was made
    run(["gpg", "--batch", "--yes", "--faked-system-time", f"{signed_at}!",
         "-u", keys.expired.fingerprint, "--output", str(message), "--sign", str(keys.manifest)],
        env=keys.env)  # fmt: skip
    refused(message.read_bytes(), [keys.expired.binary], "has expired")


@pytest.mark.parametrize(
    "keyrings", [[], [b""], [b"garbage keyring"]], ids=["none", "empty", "garbage"]
)
def test_no_usable_keys_is_refused(keys: Keys, keyrings: list[bytes], scratch: Path) -> None:
    error = refused(keys.sign(keys.signer), keyrings)
    assert "keyData" in (error.hint or "")
    assert list(scratch.iterdir()) == []


def test_nothing_is_left_running_or_behind(keys: Keys, scratch: Path) -> None:
    verify_signed_message(keys.sign(keys.signer), [keys.signer.binary], WHAT)
    refused(keys.sign(keys.other), [keys.signer.binary])
    assert list(scratch.iterdir()) == []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue
        assert str(scratch).encode() not in text, text


def test_missing_gpg_is_reported_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without gpg on it
    with pytest.raises(PolicyError, match="gpg is not installed") as err:
        verify_signed_message(b"x", [b"y"], WHAT)
    assert WHAT in err.value.message
    assert "gnupg" in (err.value.hint or "").lower()

"""The OpenPGP edge: verify a signed message with the real gpg, trusting only the keys given.

Each verification runs in a fresh private GNUPGHOME that holds nothing but the policy's
public keys, so the user's own keyring and trust settings never count. gpg's verdict is read
from its machine-readable status lines (doc/DETAILS in GnuPG), as gpgme reads them for
containers/image's ``signature/mechanism_gpgme.go``: exactly one signature, good (GOODSIG and
VALIDSIG), not expired, not by an expired or revoked key, and made by one of the keys imported
here (by primary-key fingerprint, so a signature by a signing subkey counts for its primary key).

Layout of the temporary home, removed afterwards whatever happens::

    H/ (0700)   keyring-N             the policy's keys, one file per keyring
                signature             the message to verify
                payload               what gpg extracted (read only if the verdict is good)
                import.status/.log    gpg's status lines and log for the import
                verify.status/.log    the same for the verification
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from syscontainers.errors import CommandError, PolicyError
from syscontainers.fsutil import remove_tree
from syscontainers.process import run
from syscontainers.record import record

GPG = "gpg"
GPGCONF = "gpgconf"
_TIMEOUT = 60.0
# ERRSIG's return code for "no public key": the signer is not among the imported keys.
_ERR_NO_PUBKEY = "9"
_ERR_UNSUPPORTED_ALGORITHM = "4"
_VERDICTS = frozenset({"GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG"})
_LOG_PREFIX = re.compile(r"^\S+ \S+ gpg\[\d+\] ")

_INSTALL_HINT = "install GnuPG (the gpg command; on Debian and Fedora the package is gnupg2/gnupg)"
_KEYS_HINT = (
    "the policy's keyPath/keyPaths/keyData must hold exported OpenPGP public keys "
    "(gpg --export KEY, binary or --armor)"
)
_UNTRUSTED_HINT = (
    "if you trust that key, add its public key to the policy's keyPath/keyData; otherwise "
    "ask the image's publisher which key signs it"
)
_FORMAT_HINT = "a simple-signing signature is what 'skopeo copy --sign-by' writes; re-fetch it"
_TAMPER_HINT = "the signature or its content was altered or corrupted; do not use this image"
_RESIGN_HINT = "ask the image's publisher to sign it again with a valid key"


@record
class Verified:
    """A signed message whose signature verified against a trusted key."""

    payload: bytes  # the signed content
    signer: str  # fingerprint of the PRIMARY key that made the signature (upper-case hex)


@record
class _Status:
    """One ``[GNUPG:] KEYWORD ARGS…`` line."""

    keyword: str
    args: tuple[str, ...]


@record
class _Outcome:
    """What one gpg run reported."""

    returncode: int
    statuses: tuple[_Status, ...]
    detail: str  # the last line of its log, for messages

    def has(self, keyword: str) -> bool:
        return any(s.keyword == keyword for s in self.statuses)

    def lines(self, keyword: str) -> list[_Status]:
        return [s for s in self.statuses if s.keyword == keyword]


def verify_signed_message(signature: bytes, keyrings: Sequence[bytes], what: str) -> Verified:
    """Verify the OpenPGP signed message SIGNATURE against KEYRINGS only; return its content."""
    if shutil.which(GPG) is None:
        raise PolicyError(f"cannot verify {what}: gpg is not installed", hint=_INSTALL_HINT)
    home = Path(tempfile.mkdtemp(prefix="syscontainers-gpg-"))  # mode 0700
    try:
        trusted = _import_keys(home, keyrings, what)
        return _verify(home, signature, trusted, what)
    finally:
        _stop_daemons(home)
        with contextlib.suppress(OSError):
            remove_tree(home)


def _import_keys(home: Path, keyrings: Sequence[bytes], what: str) -> frozenset[str]:
    """Import KEYRINGS into HOME; return the primary fingerprints of the keys imported."""
    if not keyrings:
        raise PolicyError(f"cannot verify {what}: the policy gives no public keys", hint=_KEYS_HINT)
    files = []
    for index, blob in enumerate(keyrings):
        path = home / f"keyring-{index}"
        _write_private(path, blob)
        files.append(str(path))
    outcome = _gpg(home, "import", ["--import", *files], what)
    if outcome.returncode != 0:
        reason = (
            "a keyring holds no OpenPGP key data"
            if outcome.has("NODATA")
            else f"gpg failed: {outcome.detail}"
        )
        raise PolicyError(
            f"cannot verify {what}: the policy's public keys cannot be imported: {reason}",
            hint=_KEYS_HINT,
        )
    imported = frozenset(s.args[1].upper() for s in outcome.lines("IMPORT_OK") if len(s.args) > 1)
    if not imported:
        raise PolicyError(
            f"cannot verify {what}: no public keys were imported from the policy",
            hint=_KEYS_HINT,
        )
    return imported


def _verify(home: Path, signature: bytes, trusted: frozenset[str], what: str) -> Verified:
    """Verify SIGNATURE in HOME and extract its content."""
    message, payload = home / "signature", home / "payload"
    _write_private(message, signature)
    argv = ["--yes", "--output", str(payload), "--decrypt", str(message)]
    outcome = _gpg(home, "verify", argv, what)
    signer = _judge(outcome, trusted, what)
    return Verified(payload.read_bytes(), signer)


def _judge(outcome: _Outcome, trusted: frozenset[str], what: str) -> str:
    """The primary fingerprint of the one good, trusted signature OUTCOME reports, or refuse."""
    verdicts = [s for s in outcome.statuses if s.keyword in _VERDICTS]
    count = max(len(verdicts), len(outcome.lines("NEWSIG")))
    if count > 1:
        reason = f"it carries {count} signatures; exactly one is expected"
        raise _refused(what, reason, _FORMAT_HINT)
    if not verdicts:
        raise _refused(what, _not_signed_reason(outcome), _FORMAT_HINT)
    verdict = verdicts[0]
    if verdict.keyword != "GOODSIG":
        raise _bad_verdict(verdict, what)
    valid = outcome.lines("VALIDSIG")
    failed = outcome.returncode != 0 or outcome.has("ERROR") or outcome.has("FAILURE")
    if failed or len(valid) != 1 or not valid[0].args:
        raise _refused(what, f"gpg did not confirm the signature: {outcome.detail}", _TAMPER_HINT)
    if outcome.has("TRUST_NEVER"):
        raise _refused(what, "its key is marked as never to be trusted", _UNTRUSTED_HINT)
    # VALIDSIG's tenth field is the primary key's fingerprint; older gpg omit it for primaries.
    fields = valid[0].args
    signer = (fields[9] if len(fields) > 9 else fields[0]).upper()
    if signer not in trusted:
        raise _untrusted(signer, what)
    return signer


def _not_signed_reason(outcome: _Outcome) -> str:
    """Why a message without any signature verdict is not a signed message."""
    if outcome.has("BEGIN_DECRYPTION") or outcome.has("NEED_PASSPHRASE_SYM"):
        return "the signature is an encrypted OpenPGP message, not a signed one"
    if outcome.has("NODATA"):
        return "the signature is not a valid OpenPGP signed message"
    return f"the signature is not a valid OpenPGP signed message ({outcome.detail})"


def _bad_verdict(verdict: _Status, what: str) -> PolicyError:
    """The refusal for a verdict other than GOODSIG."""
    key = verdict.args[0] if verdict.args else "?"
    if verdict.keyword == "ERRSIG":
        code = verdict.args[5] if len(verdict.args) > 5 else ""
        if len(verdict.args) > 6 and verdict.args[6] != "-":
            key = verdict.args[6]
        if code == _ERR_NO_PUBKEY:
            return _untrusted(key.upper(), what)
        if code == _ERR_UNSUPPORTED_ALGORITHM:
            return _refused(what, f"key {key} uses an algorithm gpg does not support", _RESIGN_HINT)
        return _refused(what, f"its signature cannot be checked (gpg error {code})", _FORMAT_HINT)
    reasons = {
        "BADSIG": (f"the signature by key {key} does not match the signed content", _TAMPER_HINT),
        "EXPSIG": (f"the signature by key {key} has expired", _RESIGN_HINT),
        "EXPKEYSIG": (f"it was signed by key {key}, which has expired", _RESIGN_HINT),
        "REVKEYSIG": (f"it was signed by key {key}, which has been revoked", _RESIGN_HINT),
    }
    reason, hint = reasons[verdict.keyword]
    return _refused(what, reason, hint)


def _untrusted(key: str, what: str) -> PolicyError:
    reason = f"it was signed by key {key}, which the policy does not trust"
    return _refused(what, reason, _UNTRUSTED_HINT)


def _refused(what: str, reason: str, hint: str) -> PolicyError:
    return PolicyError(f"{what} is refused: {reason}", hint=hint)


# ---- running gpg -------------------------------------------------------------------------


def _gpg(home: Path, stem: str, args: Sequence[str], what: str) -> _Outcome:
    """Run gpg on HOME with ARGS; its status and log go to files named after STEM."""
    status, log = home / f"{stem}.status", home / f"{stem}.log"
    argv = [
        GPG, "--batch", "--no-tty", "--homedir", str(home),
        # No agent, no dirmngr, no key servers: the home's keys are all there is.
        "--no-autostart", "--no-auto-key-retrieve",
        "--status-file", str(status), "--logger-file", str(log),
        *args,
    ]  # fmt: skip
    try:
        result = run(argv, check=False, env=_environment(), timeout=_TIMEOUT)
    except CommandError as e:
        raise PolicyError(f"cannot verify {what}: {e.message}", hint=e.hint or _INSTALL_HINT) from e
    return _Outcome(result.returncode, _read_status(status), _last_log_line(log, result.returncode))


def _environment() -> dict[str, str]:
    """Our environment, with gpg's messages in the C locale (they end up in our errors)."""
    return {**os.environ, "LC_ALL": "C"}


def _read_status(path: Path) -> tuple[_Status, ...]:
    """The status lines gpg wrote to PATH (none if it wrote no file)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ()
    out = []
    for line in text.splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *args = line[len("[GNUPG:] ") :].split(" ")
            out.append(_Status(keyword, tuple(args)))
    return tuple(out)


def _last_log_line(path: Path, returncode: int) -> str:
    """The last line of gpg's log at PATH, without its timestamp, or the exit status."""
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    for line in reversed(lines):
        if line.strip():
            return _LOG_PREFIX.sub("", line).strip()
    return f"exit status {returncode}"


def _write_private(path: Path, data: bytes) -> None:
    """Write DATA to the new file PATH, readable by us only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def _stop_daemons(home: Path) -> None:
    """Stop any gpg daemon that runs for HOME (best effort: none should have started)."""
    with contextlib.suppress(CommandError):
        run([GPGCONF, "--homedir", str(home), "--kill", "all"], check=False, timeout=10.0)

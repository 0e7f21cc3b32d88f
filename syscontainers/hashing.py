"""SHA-256, with hashlib imported at the first hash.

Loading hashlib loads OpenSSL: 2-3 ms of start-up that a verb which hashes nothing (list,
uninstall, rollback, --help) should not pay. Every module hashes through ``sha256`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash


def sha256(data: bytes | memoryview = b"") -> _Hash:
    """A new SHA-256 hash object over DATA (as hashlib.sha256)."""
    import hashlib  # after the first call, a lookup in sys.modules

    return hashlib.sha256(data)

"""A LayoutReader over a tar archive (plain, gzip, bzip2 or xz), read in place.

Apart from oci_layout so that a layout in a directory, the usual case, does not load tarfile
and the three decompressors (about 3 ms of start-up); oci-archive: and docker-archive: do.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from syscontainers.errors import SourceError
from syscontainers.sources.oci_layout import REBUILD_HINT, clean_path, missing_error

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_MAX_LINKS = 16
_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


_OPENERS: tuple[tuple[bytes, Callable[[Path], BinaryIO]], ...] = (
    (b"\x1f\x8b", lambda p: cast(BinaryIO, gzip.open(p, "rb"))),
    (b"BZh", lambda p: cast(BinaryIO, bz2.open(p, "rb"))),
    (b"\xfd7zXZ\x00", lambda p: cast(BinaryIO, lzma.open(p, "rb"))),
)


def _archive_opener(path: Path) -> Callable[[Path], BinaryIO]:
    """How to open PATH as an uncompressed tar stream, judged by its first bytes."""
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, opener in _OPENERS:
        if head.startswith(magic):
            return opener
    return lambda p: open(p, "rb")


class _Section(io.RawIOBase):
    """The next SIZE bytes of a stream that this section owns."""

    def __init__(self, stream: BinaryIO, size: int, what: str) -> None:
        super().__init__()
        self._stream, self._left, self._what = stream, size, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._stream.read(min(len(view), self._left))
        except _TAR_ERRORS as e:
            raise SourceError(f"cannot read {self._what}: {e}", hint=REBUILD_HINT) from e
        if not data and self._left:
            raise SourceError(
                f"{self._what} ends early: the archive is truncated", hint=REBUILD_HINT
            )
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


class TarReader:
    """A LayoutReader over a tar archive (plain, gzip, bzip2 or xz), read in place.

    The member list is read once. Each open() then opens the archive file anew and seeks to the
    member's data, so streams are independent and may be read from several threads at once. In
    a compressed archive that seek decompresses everything before the member.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        try:
            self._opener = _archive_opener(path)
            with tarfile.open(path, "r:*") as tar:
                members = tar.getmembers()
        except tarfile.ReadError as e:
            raise SourceError(
                f"{path} is not a tar archive, or is corrupt: {e}",
                hint="an archive must be a tar, optionally gzip, bzip2 or xz compressed",
            ) from e
        except _TAR_ERRORS as e:
            raise SourceError(
                f"{path} is a truncated or corrupt tar archive: {e}", hint="re-create the archive"
            ) from e
        self._members = {posixpath.normpath(m.name).lstrip("/"): m for m in members}

    def _find(self, path: str, what: str) -> tarfile.TarInfo:
        """The regular-file member at PATH, following links inside the archive."""
        name = clean_path(path, self.location)
        for _ in range(_MAX_LINKS):
            member = self._members.get(name)
            if member is None:
                break
            if member.isreg():
                return member
            if member.issym():
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = posixpath.normpath(member.linkname).lstrip("/")
            else:
                break
        raise missing_error(what, path, self.location)

    def exists(self, path: str) -> bool:
        """True if PATH names a regular file (after links) in the archive."""
        try:
            self._find(path, path)
        except SourceError:
            return False
        return True

    def open(self, path: str, what: str) -> BinaryIO:
        """A stream of the member at PATH, independent of any other."""
        member = self._find(path, what)
        if member.sparse is not None:
            raise SourceError(
                f"{what} is a sparse file in {self.location}, which is not supported",
                hint="re-create the archive without --sparse",
            )
        try:
            stream = self._opener(self.path)
        except OSError as e:
            raise SourceError(
                f"cannot open {self.location}: {e.strerror or e}",
                hint=f"check the path and permissions of {self.location}",
            ) from e
        try:
            stream.seek(member.offset_data)
        except _TAR_ERRORS as e:
            stream.close()
            raise SourceError(
                f"cannot read {what} from {self.location}: {e}", hint=REBUILD_HINT
            ) from e
        return io.BufferedReader(_Section(stream, member.size, f"{what} in {self.location}"))

    def size(self, path: str, what: str) -> int:
        """The size of the member at PATH."""
        return self._find(path, what).size

    def close(self) -> None:
        """Nothing to release: every stream owns its file."""

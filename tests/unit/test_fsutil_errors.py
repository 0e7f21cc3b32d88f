"""host_error: which OSErrors are the host's doing, and what each one tells the user."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from syscontainers.errors import FilesystemError
from syscontainers.fsutil import filesystem_errors, host_error


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, ("has no space left", "df -h")),
        (errno.EDQUOT, ("over its disk quota", "quota")),
        (errno.EROFS, ("is read-only", "remount it read-write")),
        (errno.EACCES, ("permission denied", "run as root")),
        (errno.EPERM, ("permission denied", "run as root")),
        (errno.ENAMETOOLONG, ("too long", "shorter names")),
    ],
)
def test_host_errors_say_what_is_wrong_and_what_to_do(
    tmp_path: Path, code: int, words: tuple[str, str]
) -> None:
    error = host_error(OSError(code, "x"), tmp_path / "never" / "made", "doing it", "retry")
    assert error is not None and "doing it" in error.message
    assert words[0] in error.message and words[1] in (error.hint or "")
    assert (error.hint or "").endswith("retry")
    if code in (errno.ENOSPC, errno.EROFS):
        assert str(tmp_path) in error.message and "never" not in error.message


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOENT, errno.EBADF, None])
def test_other_errors_are_not_the_hosts(tmp_path: Path, code: int | None) -> None:
    assert host_error(OSError(code, "x"), tmp_path, "doing", "again") is None
    with pytest.raises(OSError), filesystem_errors(tmp_path, "doing", "again"):
        raise OSError(code, "x")


def test_the_context_manager_translates(tmp_path: Path) -> None:
    with pytest.raises(FilesystemError) as info, filesystem_errors(tmp_path, "pulling", "again"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(info.value.__cause__, OSError)

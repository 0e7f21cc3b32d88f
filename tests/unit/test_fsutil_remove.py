"""remove_tree: whatever is at a path goes (a link, never what it points to), and a missing
path is no error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


def _empty_dir(p: Path) -> None:
    p.mkdir()


def _file(p: Path) -> None:
    p.write_bytes(b"x")


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _tree(p: Path) -> None:
    (p / "a" / "b").mkdir(parents=True)
    (p / "a" / "b" / "f").write_bytes(b"x")
    os.chmod(p / "a", 0o500)  # read-only: made writable to be emptied


def _link_to_dir(p: Path) -> None:
    target = p.with_name("target")
    target.mkdir()
    (target / "kept").write_bytes(b"x")
    p.symlink_to(target)


@pytest.mark.parametrize("make", [_empty_dir, _file, _fifo, _tree, _link_to_dir, None])
def test_remove_tree_removes_what_is_there(
    tmp_path: Path, make: Callable[[Path], None] | None
) -> None:
    from syscontainers.fsutil import remove_tree

    path = tmp_path / "victim"
    if make is not None:
        make(path)
    remove_tree(path)
    assert not os.path.lexists(path)
    if make is _link_to_dir:
        assert (tmp_path / "target" / "kept").read_bytes() == b"x"

"""Tests for syscontainers.store.lock: exclusion between processes, sharing, waiting, timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from syscontainers.errors import StoreError, StoreLockedError
from syscontainers.operations import images as image_ops
from syscontainers.operations.inspect import inspect_image
from syscontainers.store import Store
from syscontainers.store.lock import LockMode, store_lock
from tests.unit.store_fixtures import new_store

REPO = Path(__file__).resolve().parents[2]

# Takes the lock, says so, then holds it until its stdin closes (or for HOLD seconds).
HOLDER = """
import sys, time
from pathlib import Path
from syscontainers.store.lock import LockMode, store_lock
path, mode, hold = Path(sys.argv[1]), LockMode[sys.argv[2]], float(sys.argv[3])
with store_lock(path, mode):
    print("locked", flush=True)
    if hold > 0:
        time.sleep(hold)
    else:
        sys.stdin.read()
print("released", flush=True)
"""


@contextmanager
def holder(path: Path, mode: LockMode, hold: float = 0) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock at PATH in MODE."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode.name, str(hold)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)


def can_lock(path: Path, mode: LockMode) -> bool:
    try:
        with store_lock(path, mode, timeout=0.2):
            return True
    except StoreLockedError:
        return False


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "store" / "lock"


def test_exclusive_blocks_exclusive_from_another_process(lock: Path) -> None:
    with holder(lock, LockMode.EXCLUSIVE) as proc:
        start = time.monotonic()
        with pytest.raises(StoreLockedError) as e:
            with store_lock(lock, LockMode.EXCLUSIVE, timeout=0.3):
                pytest.fail("got the lock while another process held it")
        assert time.monotonic() - start >= 0.3
        assert e.value.message == f"the store {lock.parent} is locked by pid {proc.pid}"
        assert e.value.hint and "wait" in e.value.hint
        assert isinstance(e.value, StoreError) and e.value.exit_code == 1
    assert can_lock(lock, LockMode.EXCLUSIVE)  # free again once the holder is gone


def test_exclusive_blocks_readers(lock: Path) -> None:
    with holder(lock, LockMode.EXCLUSIVE):
        assert not can_lock(lock, LockMode.SHARED)


def test_shared_locks_coexist_and_keep_writers_out(lock: Path) -> None:
    with holder(lock, LockMode.SHARED), holder(lock, LockMode.SHARED):
        assert can_lock(lock, LockMode.SHARED)
        with pytest.raises(StoreLockedError) as e:
            with store_lock(lock, LockMode.EXCLUSIVE, timeout=0.2):
                pass
        assert e.value.message.endswith("is locked by another command")  # readers leave no pid


def test_waiting_is_reported_then_succeeds(lock: Path) -> None:
    messages: list[str] = []
    with holder(lock, LockMode.EXCLUSIVE, hold=0.5) as proc:
        with store_lock(lock, LockMode.EXCLUSIVE, timeout=20, on_wait=messages.append):
            assert lock.read_text().strip() == str(os.getpid())
        assert proc.stdout is not None and proc.stdout.readline() == "released\n"
    assert messages == [f"waiting for the store lock held by pid {proc.pid}"]


def test_no_wait_no_report(lock: Path) -> None:
    messages: list[str] = []
    with store_lock(lock, LockMode.SHARED, on_wait=messages.append):
        pass
    assert messages == []


def test_writer_records_its_pid_and_clears_it(lock: Path) -> None:
    assert not lock.parent.exists()
    with store_lock(lock, LockMode.EXCLUSIVE):
        assert lock.read_text() == f"{os.getpid()}\n"
    assert lock.read_text() == ""
    with store_lock(lock, LockMode.SHARED):
        assert lock.read_text() == ""  # a reader writes nothing


def test_lock_is_released_when_the_body_raises(lock: Path) -> None:
    with pytest.raises(RuntimeError):
        with store_lock(lock, LockMode.EXCLUSIVE):
            raise RuntimeError("boom")
    with holder(lock, LockMode.EXCLUSIVE):  # another process can take it at once
        pass


def test_a_killed_writer_leaves_the_store_unlocked(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with holder(store.path / "lock", LockMode.EXCLUSIVE, hold=60) as proc:
        (store.tmp_dir / ".tmp-obj-123").write_bytes(b"partial")  # its half-written object
        proc.kill()
        proc.wait(timeout=30)
        assert (store.path / "lock").read_text() == f"{proc.pid}\n"  # a stale pid stays...
        with store.locked(LockMode.EXCLUSIVE):  # ...but the kernel dropped the lock
            assert list(store.tmp_dir.iterdir()) == []  # and the next writer cleans up
            assert (store.path / "lock").read_text() == f"{os.getpid()}\n"


def test_store_lock_timeout_comes_from_the_store(tmp_path: Path) -> None:
    """Store(lock_timeout=…) bounds the wait (the lock_timeout setting)."""
    store = Store(tmp_path / "store", lock_timeout=0.2)
    (tmp_path / "store").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(30)",
            str(tmp_path / "store" / "lock"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        start = time.monotonic()
        with pytest.raises(StoreLockedError), store.locked(LockMode.EXCLUSIVE):
            pass
        assert time.monotonic() - start < 5
    finally:
        holder.kill()
        holder.wait()


# The image verbs take the store lock in operations/, not in the CLI: a library caller of each
# is kept out while another process writes.
@pytest.mark.parametrize(
    "call",
    [
        lambda store: image_ops.list_images(store),
        lambda store: image_ops.tag_image(store, "example.org/a:1", "example.org/b:1"),
        lambda store: image_ops.delete_images(store, ["example.org/a:1"]),
        lambda store: inspect_image(store, "example.org/a:1"),
    ],
    ids=["list", "tag", "delete", "inspect"],
)
def test_image_operations_take_the_store_lock_themselves(
    tmp_path: Path, call: Callable[[Store], object]
) -> None:
    with Store(tmp_path / "store").locked(LockMode.EXCLUSIVE):
        pass  # the store's layout exists: a shared lock is taken, not skipped
    with holder(tmp_path / "store" / "lock", LockMode.EXCLUSIVE):
        with pytest.raises(StoreLockedError):
            call(Store(tmp_path / "store", lock_timeout=0.2))

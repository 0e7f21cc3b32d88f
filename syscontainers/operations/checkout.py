"""``checkout``, ``mount`` and ``umount``: stored images as directories, under the store lock."""

from __future__ import annotations

from pathlib import Path

from syscontainers.checkout import CheckoutResult, checkout
from syscontainers.operations.images import find_image
from syscontainers.progress import Reporter
from syscontainers.store import Store
from syscontainers.store.lock import LockMode


def checkout_image(store: Store, text: str, dest: Path, reporter: Reporter) -> CheckoutResult:
    """Materialise the image TEXT names at DEST as a hardlink tree."""
    with store.locked(LockMode.SHARED):
        image = find_image(store, text)
        return checkout(store, image.layers, dest, reporter)


def mount(store: Store, mounts_dir: Path, text: str, target: Path, reporter: Reporter) -> str:
    """Mount the image TEXT names read-only at TARGET; returns its id."""
    from syscontainers.mount import mount_image  # and process/subprocess: not for checkout

    with store.locked(LockMode.EXCLUSIVE):
        image = find_image(store, text)
        mount_image(store, mounts_dir, text, image.manifest_digest, image.layers, target, reporter)
        return image.manifest_digest


def umount(store: Store, mounts_dir: Path, target: Path) -> str:
    """Undo ``mount``; returns the id of the image that was mounted."""
    from syscontainers.mount import unmount_image

    with store.locked(LockMode.EXCLUSIVE):
        return unmount_image(store, mounts_dir, target)

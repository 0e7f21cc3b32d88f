"""Fixtures shared by integration test modules (the helpers they use are in conftest_registry.py,
nspawn.py and the other modules here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest_registry import (
    PlainRegistry,
    build_images,
    push,
    registry_server,
)


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlainRegistry]:
    """A plain-HTTP registry without auth, holding test/busybox:1, test/multi:1, test/zstd:1."""
    work = tmp_path_factory.mktemp("plain-registry")
    images = build_images(work / "layout")
    with registry_server(work / "registry") as registry:
        # zstd first: skopeo reuses a gzip blob the registry already has instead of recompressing
        push(
            images.layout, "plain-for-zstd", registry, "test/zstd:1",
            "--dest-compress-format", "zstd", "--format", "oci",
        )  # fmt: skip
        push(images.layout, "busybox", registry, "test/busybox:1")
        push(images.layout, "multi", registry, "test/multi:1", "--all")
        yield PlainRegistry(registry, images)

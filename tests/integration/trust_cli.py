"""Shared by the trust end-to-end tests: our pull and skopeo's copy of one image under the
same policy and registries.d, and what a refused pull must leave behind (nothing)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

_serial = itertools.count()


class TrustWorld(Protocol):
    """Where a test's files go and which registries.d it uses."""

    tmp: Path
    registries_d: Path


def ours(world: TrustWorld, policy: Path | None, source: str, *extra: str) -> tuple[int, str, Path]:
    """Pull SOURCE with our CLI into a new store under POLICY; (exit code, stderr, store root)."""
    root = world.tmp / f"root-{next(_serial)}"
    config = world.tmp / f"config-{root.name}.yaml"
    config.write_text(
        f"root: {root}\nregistries-d: {world.registries_d}\n"
        f"registries-conf: {world.tmp / 'none.conf'}\n"
    )
    argv = [sys.executable, "-m", "syscontainers", "pull", source, "--tls-verify=false", *extra]
    if policy is not None:
        argv += ["--policy", str(policy)]
    env = {**os.environ, "SYSCONTAINERS_CONFIG": str(config)}
    env.pop("SYSCONTAINERS_POLICY", None)
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    return done.returncode, done.stderr, root


def skopeo_accepts(world: TrustWorld, policy: Path, source: str) -> tuple[bool, str]:
    """The oracle: does skopeo copy SOURCE under POLICY and the same registries.d? (and what it
    said on stderr)."""
    dest = world.tmp / f"skopeo-{next(_serial)}"
    done = subprocess.run(
        ["skopeo", "--policy", str(policy), "--registries.d", str(world.registries_d), "copy",
         "--quiet", "--src-tls-verify=false", "--remove-signatures", source, f"oci:{dest}:x"],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0, done.stderr


def stored_nothing(root: Path) -> bool:
    """True if the store under ROOT holds no tag and no object (file or symlink)."""
    store = root / "store"
    objects = store / "objects"
    found = (
        [p for p in objects.rglob("*") if p.is_symlink() or not p.is_dir()]
        if (objects.exists())
        else []
    )
    refs = list((store / "refs").iterdir()) if (store / "refs").exists() else []
    return not found and not refs

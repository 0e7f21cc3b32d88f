"""The source tree as the package builds take it: its files, and pyproject.toml's version."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from tests.integration.nspawn import REPO


def project_version() -> str:
    """The version in pyproject.toml, which the packages and the tool must all carry."""
    with open(REPO / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def tree_tar(archive: Path, prefix: str = "") -> Path:
    """Tar (gzipped if ARCHIVE ends in .gz) the files git tracks or would track, each under
    PREFIX, as `git archive --prefix` does but with the work tree's current contents."""
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    # the S flag keeps tar from prefixing symlink targets too (render/defaults -> ../../templates)
    transform = [f"--transform=s,^,{prefix},S"] if prefix else []
    compress = ["-z"] if archive.name.endswith(".gz") else []
    subprocess.run(
        [
            "tar",
            "-C",
            str(REPO),
            "--null",
            "-T",
            "-",
            "--ignore-failed-read",
            *transform,
            *compress,
            "-cf",
            str(archive),
        ],
        input=files,
        capture_output=True,
        check=True,
    )
    return archive

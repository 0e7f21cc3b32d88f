"""A clean Debian 12 root holding only what a .deb says it needs, made once by mmdebstrap.

The root has systemd and dbus (to boot it), man-db and bash-completion (to read what the
package installs), and the packages the .deb names in Depends and Recommends, with their
own dependencies: nothing else from this machine. A dependency the package forgot to
declare is then missing inside, where the installed tool fails.

mmdebstrap needs the Debian mirror and takes about a minute, so each root is cached under
$SYSCONTAINERS_TEST_CACHE (default /var/cache/syscontainers-tests), named by a hash of its
package list; a root made for another list is removed. Boot it with
``NspawnHost(directory=root, volatile="overlay")``: writes go to a tmpfs, the cache stays
as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("SYSCONTAINERS_TEST_CACHE", "/var/cache/syscontainers-tests"))
SUITE = "bookworm"
BASE = ("systemd", "dbus", "man-db", "bash-completion")
PREFIX = f"{SUITE}-root-"


def relations(deb: Path, field: str) -> list[str]:
    """The packages DEB names in FIELD (Depends, Recommends): each first alternative."""
    value = subprocess.run(
        ["dpkg-deb", "--field", str(deb), field], capture_output=True, text=True, check=True
    ).stdout
    names = []
    for clause in value.replace("\n", " ").split(","):
        first = clause.split("|")[0].strip()
        if first:
            names.append(first.split()[0].split(":")[0])
    return names


def debroot(packages: list[str], base: tuple[str, ...] = BASE, prefix: str = PREFIX) -> Path | str:
    """The cached root with BASE and PACKAGES installed, or why it cannot be made here.

    Roots of another PREFIX (another user of this cache) are left alone."""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed"
    wanted = sorted({*base, *packages})
    key = hashlib.sha256(" ".join(wanted).encode()).hexdigest()[:16]
    root = CACHE / f"{prefix}{key}"
    if root.is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{prefix}*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = CACHE / f".{prefix}{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # mmdebstrap wants an empty target
    argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(wanted)}", SUITE, str(tmp)]
    try:
        made = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        made = None
    if made is None or made.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "" if made is None else made.stderr[-2000:]
        return f"mmdebstrap could not make a {SUITE} root (is the Debian mirror reachable?) {tail}"
    tmp.rename(root)
    return root

"""Survey: every atomic-system-containers image, mirrored, installed unchanged on a booted systemd.

    .venv/bin/python -m tests.integration.atomic_survey [NAME...]

Builds the mirrors of tests/integration/atomic_mirrors.py, boots one systemd host in
systemd-nspawn (tests/integration/nspawn.py), and for each image runs ``install --now``
(``install`` for a run-once image) with no --set, then reads the unit's state and, when
it is not active, the last lines of its journal, and uninstalls it. Prints one line per
image: whether it installed and ran, and why not. Not part of the test suite: it is a
report for people, and takes a few minutes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.integration.atomic_mirrors import DEBIAN_HOST, Mirror, build, here, mirrors
from tests.integration.nspawn import Bind, NspawnHost, persistent_binds

CLI = "import sys; from syscontainers.cli import main; sys.exit(main(sys.argv[1:]))"


def survey_one(host: NspawnHost, layout: str, mirror: Mirror) -> str:
    """Install MIRROR, look at it, uninstall it; one line of result."""
    once = mirror.labels.get("atomic.run") == "once"
    options = [] if once else ["--now", "--health-timeout", "5"]
    out = host.run(
        [
            "/usr/bin/python3",
            "-c",
            CLI,
            "install",
            *options,
            "--name",
            mirror.name,
            f"oci:{layout}:{mirror.name}",
        ],
        check=False,
        timeout=300,
    )
    state = (
        "ran once"
        if once
        else host.run(
            ["systemctl", "is-active", f"{mirror.name}.service"], check=False
        ).stdout.strip()
    )
    detail = ""
    if out.returncode != 0 or state not in ("active", "ran once"):
        journal = host.run(
            ["journalctl", "-q", "-n", "12", "-o", "cat", "-u", f"{mirror.name}.service"],
            check=False,
        ).stdout
        detail = " | ".join(x for x in (out.stderr + journal).splitlines() if x.strip())[-1500:]
    warnings = [x for x in out.stderr.splitlines() if x.startswith("warning")]
    host.run(["/usr/bin/python3", "-c", CLI, "uninstall", mirror.name], check=False)
    verdict = "OK" if out.returncode == 0 and state in ("active", "ran once") else "FAILS"
    lines = [f"{mirror.name}: {verdict} (install exit {out.returncode}, unit {state})"]
    lines += [f"    {w}" for w in warnings]
    if detail:
        lines.append(f"    {detail}")
    if mirror.why_not:
        lines.append(f"    expected here: {mirror.why_not}")
    return "\n".join(lines)


def main(names: list[str]) -> int:
    """Build, boot, install each, print."""
    every = [*mirrors(), *here()]
    chosen = [m for m in every if not names or m.name in names]
    work = Path(tempfile.mkdtemp(prefix="atomic-survey-", dir="/var/tmp"))
    for mirror in chosen:
        build(work / "images", mirror)
    local_bin = work / "persist" / "usr-local-bin"  # /usr is this machine's, read-only
    local_bin.mkdir(parents=True)
    host = NspawnHost(work, binds=(*persistent_binds(work), Bind(local_bin, "/usr/local/bin")))
    host.boot()
    try:
        host.sh(DEBIAN_HOST)
        for mirror in chosen:
            print(survey_one(host, host.inside(work / "images"), mirror), flush=True)
    finally:
        host.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

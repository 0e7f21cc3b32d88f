"""The seams every lifecycle operation acts through: ``Host``.

``Host`` carries the store, the paths, systemd, systemd-tmpfiles, the
reporter, the registry, the trust-policy check, the way commands are run, the
journal reader and the crash-point seam. It lives apart from
``operations.slot`` so that verbs which only read deployments (``list``)
load neither the pull, checkout and render machinery nor the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from syscontainers import crashpoints, journal, process, progress
from syscontainers.deploy.layout import ContainerDir, validate_name
from syscontainers.progress import NullReporter, Reporter
from syscontainers.record import field, record
from syscontainers.store.lock import LockMode

if TYPE_CHECKING:  # annotations only: the systemd module loads the D-Bus transport
    from syscontainers.deploy.publish import Tmpfiles
    from syscontainers.operations.pull import PolicyCheck
    from syscontainers.paths import Paths
    from syscontainers.sources import SourceOpener, SourceSpec
    from syscontainers.store import Store
    from syscontainers.systemd import UnitManager


@record
class Host:
    """The seams a lifecycle operation acts through."""

    store: Store
    paths: Paths
    units: UnitManager
    tmpfiles: Tmpfiles
    reporter: Reporter = field(default_factory=NullReporter)
    registry: SourceOpener | None = None  # docker:// sources; None: local transports only
    execute: Callable[[Sequence[str]], int] = process.exec_interactive
    # the trust-policy check for each source pulled from; None: accept (library use, tests)
    policy: Callable[[SourceSpec], PolicyCheck] | None = None
    # a unit's last journal lines, shown when it fails to start
    journal: Callable[[str], tuple[str, ...]] = journal.tail
    # called at each named crash point (syscontainers.crashpoints); tests stop or kill there
    crashpoint: Callable[[str], None] = crashpoints.ignore

    def container(self, name: str) -> ContainerDir:
        """The deployment paths of container NAME (validated)."""
        return ContainerDir(self.paths.deployments, validate_name(name))

    def locate_runtime(self, text: str) -> str:
        """The runtime setting TEXT with its executable found (in the offline root, with one)."""
        from syscontainers.runtime import locate_for

        sysroot = self.paths.sysroot
        return locate_for(text, None if sysroot is None else str(sysroot))

    def locked(self, mode: LockMode = LockMode.EXCLUSIVE) -> AbstractContextManager[Store]:
        """The store lock, with waiting reported as a step."""
        return self.store.locked(mode, on_wait=lambda msg: progress.step(self.reporter, msg))

"""A throwaway systemd host booted in systemd-nspawn, for tests that need a real systemd.

The boot follows ../shared/docs/test-host.md: the host's own / with a tmpfs root
(``--volatile=yes``), unified cgroups, every capability plus the keyring and bpf
syscalls runc needs, and a private network. Two additions keep parallel runs
apart: a unique ``--machine`` name, and a cgroup of our own that nspawn starts
in (it puts its ``payload`` and ``supervisor`` cgroups beside itself).

A test directory is bound to /srv/test and this repository, read-only, to
/srv/repo (on PYTHONPATH inside). Extra binds survive a ``reboot()``: the host is
powered off and booted again with the same binds. A preset file that disables
everything keeps the host's own enabled services (registries, databases) from
starting inside.

Inside, /usr/bin/python3 is the host's, so the repository's dependencies must be
Debian packages: see ``APT_PACKAGES``. Gate tests on ``probe()`` and on the first
boot succeeding (``booted_or_skip``), not on the uid.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_MOUNT = "/srv/test"
REPO_MOUNT = "/srv/repo"
APT_PACKAGES = (
    "python3-dbus-next",
    "python3-yaml",
    "python3-jinja2",
    "python3-requests",
    "python3-zstandard",
)
PYTHON_MODULES = ("dbus_next", "yaml", "jinja2", "requests", "zstandard")
DEFAULT_MASKS = ("systemd-firstboot.service",)
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONPATH": REPO_MOUNT,
    # The booted host's /etc is a fresh tmpfs (--volatile=yes), without containers-common's
    # /etc/containers/policy.json: pulls inside use this accept-anything policy instead.
    "SYSCONTAINERS_POLICY": f"{REPO_MOUNT}/tests/data/accept-anything-policy.json",
    "PYTHONDONTWRITEBYTECODE": "1",
    "SYSTEMD_PAGER": "cat",
    "SYSTEMD_COLORS": "0",
}
_PRESET = "# syscontainers tests: enable nothing the host happens to have installed\ndisable *\n"
_serial = count()


@dataclass(frozen=True)
class Bind:
    """A host directory bound into the booted host."""

    source: Path
    target: str
    readonly: bool = False

    def option(self) -> str:
        """The systemd-nspawn option for this bind."""
        if ":" in str(self.source) or ":" in self.target:
            raise ValueError(f"nspawn binds cannot contain ':': {self.source} {self.target}")
        return f"--bind{'-ro' if self.readonly else ''}={self.source}:{self.target}"


@dataclass(frozen=True)
class Completed:
    """A command that ran inside the booted host."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Completed:
        """Raise AssertionError with the output if the command failed."""
        if self.returncode != 0:
            raise AssertionError(
                f"{shlex.join(self.argv)} exited {self.returncode}\n"
                f"stdout: {self.stdout}\nstderr: {self.stderr}"
            )
        return self


class BootError(RuntimeError):
    """The booted host did not come up."""


def probe() -> str | None:
    """Why nspawn tests cannot run here, or None if the tools are present."""
    for tool in ("systemd-nspawn", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/usr/lib/systemd/systemd").exists():
        return "/usr/lib/systemd/systemd is missing"
    if not os.access("/sys/fs/cgroup", os.W_OK):
        return "cannot create cgroups"
    return missing_python_modules()


def missing_python_modules() -> str | None:
    """Why /usr/bin/python3 (shared with the booted host) cannot import our dependencies."""
    code = "import " + ", ".join(PYTHON_MODULES)
    proc = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    return f"/usr/bin/python3 lacks dependencies; apt-get install {' '.join(APT_PACKAGES)}"


def skip_without_runtimes() -> None:
    """Skip the calling test unless runc, crun and busybox-static are installed."""
    for tool in ("runc", "crun"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static is not installed")


def persistent_binds(test_dir: Path) -> tuple[Bind, ...]:
    """Binds for the store root and the unit and tmpfiles directories, kept across reboots."""
    pairs = (
        ("root", "/var/lib/syscontainers"),
        ("etc-systemd-system", "/etc/systemd/system"),
        ("etc-tmpfiles.d", "/etc/tmpfiles.d"),
    )
    binds = []
    for name, target in pairs:
        source = test_dir / "persist" / name
        source.mkdir(parents=True, exist_ok=True)
        binds.append(Bind(source, target))
    return tuple(binds)


def _cgroup_roots() -> tuple[Path, ...]:
    """Where to make our cgroup in each hierarchy nspawn uses: unified, and name=systemd."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return (base / _own_cgroup(""),)
    if (base / "unified" / "cgroup.controllers").exists():  # hybrid
        return (base / "unified" / _own_cgroup(""), base / "systemd" / _own_cgroup("name=systemd"))
    return ()


def _own_cgroup(controllers: str) -> str:
    """Our cgroup path in the hierarchy of CONTROLLERS ("" names the unified one)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _hierarchy, names, path = line.split(":", 2)
        if names == controllers:
            return path.lstrip("/")
    return ""


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """The pids whose parent is PID."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class NspawnHost:
    """One booted systemd host; boot(), run() inside, reboot(), shutdown()."""

    test_dir: Path
    binds: Sequence[Bind] = ()
    # The OS tree to boot, and how: the host's own / on a tmpfs (its /usr read-only), or
    # another tree (tests/packaging/debroot.py's) with "overlay", writable and thrown away.
    directory: Path = Path("/")
    volatile: str = "yes"
    masks: Sequence[str] = DEFAULT_MASKS
    boot_timeout: float = 90.0
    machine: str = field(default_factory=lambda: f"sctest-{os.getpid()}-{next(_serial)}")
    pid: int = 0
    boot_seconds: list[float] = field(default_factory=list)
    _nspawn: subprocess.Popen[bytes] | None = None
    _pid_ns: str | None = None
    _cgroups: tuple[Path, ...] = ()

    @property
    def state_dir(self) -> Path:
        """Where the harness keeps the console log and the preset file."""
        return self.test_dir / ".nspawn"

    def inside(self, host_path: Path) -> str:
        """The path inside the booted host of HOST_PATH under the test directory."""
        return f"{TEST_MOUNT}/{host_path.relative_to(self.test_dir)}"

    def argv(self) -> list[str]:
        """The systemd-nspawn command line (test-host.md's, plus name, binds and masks)."""
        binds = [
            Bind(self.test_dir, TEST_MOUNT),
            Bind(REPO, REPO_MOUNT, readonly=True),
            Bind(self.state_dir / "preset", "/etc/systemd/system-preset", readonly=True),
            *self.binds,
        ]
        return [
            "systemd-nspawn",
            "-D",
            str(self.directory),
            f"--volatile={self.volatile}",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--capability=all",
            "--system-call-filter=add_key keyctl request_key bpf",
            f"--machine={self.machine}",
            "--console=pipe",
            *(b.option() for b in binds),
            *(f"systemd.mask={unit}" for unit in self.masks),
        ]

    def boot(self) -> float:
        """Boot the host and wait until dbus.service is active; return the seconds it took."""
        if self._nspawn is not None:
            raise RuntimeError(f"{self.machine} is already booted")
        (self.state_dir / "preset").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "preset" / "00-syscontainers-tests.preset").write_text(_PRESET)
        started = time.monotonic()
        self._cgroups = self._make_cgroups()
        wrapper = 'echo $$ | tee "$@" >/dev/null || exit 1; exec ' + shlex.join(self.argv())
        procs = [str(c / "cgroup.procs") for c in self._cgroups]
        with open(self.state_dir / "console.log", "ab") as log:
            self._nspawn = subprocess.Popen(
                ["sh", "-c", wrapper, "sh", *procs],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
                start_new_session=True,
            )
        try:
            self.pid = self._wait_for_pid1(started)
            self._pid_ns = _pid_ns(self.pid)
            self._wait_for_dbus(started)
        except BaseException:
            self.shutdown(hard=True)
            raise
        elapsed = time.monotonic() - started
        self.boot_seconds.append(elapsed)
        return elapsed

    def _make_cgroups(self) -> tuple[Path, ...]:
        made = []
        for root in _cgroup_roots():
            path = root / self.machine
            path.mkdir(exist_ok=True)
            made.append(path)
        return tuple(made)

    def _deadline_check(self, started: float, what: str) -> None:
        assert self._nspawn is not None
        if self._nspawn.poll() is not None:
            raise BootError(
                f"systemd-nspawn exited {self._nspawn.returncode} before {what}\n"
                + self.console_tail()
            )
        if time.monotonic() - started > self.boot_timeout:
            raise BootError(
                f"{what} did not happen within {self.boot_timeout} s\n" + self.console_tail()
            )

    def _wait_for_pid1(self, started: float) -> int:
        assert self._nspawn is not None
        while True:
            for child in children(self._nspawn.pid):
                try:
                    if os.readlink(f"/proc/{child}/exe") == "/usr/lib/systemd/systemd":
                        return child
                except OSError:
                    continue
            self._deadline_check(started, "systemd starting as PID 1")
            time.sleep(0.05)

    def _wait_for_dbus(self, started: float) -> None:
        while True:
            done = self.run(["systemctl", "is-active", "dbus.service"], check=False)
            if done.stdout.strip() == "active":
                return
            self._deadline_check(started, "dbus.service becoming active")
            time.sleep(0.1)

    def console_tail(self, lines: int = 40) -> str:
        """The end of the booted host's console output."""
        try:
            text = (self.state_dir / "console.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60.0,
        input_text: str | None = None,
    ) -> Completed:
        """Run ARGV inside the booted host with nsenter; return its output."""
        if not self.pid:
            raise RuntimeError(f"{self.machine} is not booted")
        full = ["nsenter", "-t", str(self.pid), "-a", *argv]
        proc = subprocess.run(
            full, input=input_text, capture_output=True, text=True, env=INSIDE_ENV, timeout=timeout
        )
        done = Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
        return done.check() if check else done

    def sh(self, script: str, *, check: bool = True, timeout: float = 60.0) -> Completed:
        """Run a /bin/sh script inside."""
        return self.run(["/bin/sh", "-c", script], check=check, timeout=timeout)

    def python(
        self, code: str, *args: str, check: bool = True, timeout: float = 120.0
    ) -> Completed:
        """Run Python CODE with /usr/bin/python3 inside, the repository on its path."""
        return self.run(["/usr/bin/python3", "-c", code, *args], check=check, timeout=timeout)

    def shutdown(self, *, hard: bool = False, timeout: float = 30.0) -> float:
        """Power off (or, if HARD, kill) PID 1, wait for nspawn, check nothing is left."""
        started = time.monotonic()
        if self._nspawn is None:
            return 0.0
        if self.pid and not hard:
            self._signal_pid1(signal.SIGRTMIN + 4)  # systemd: poweroff
            if not self._wait_nspawn(timeout):
                hard = True
        if hard:
            if self.pid:
                self._signal_pid1(signal.SIGKILL)
            if not self._wait_nspawn(10):
                self._nspawn.kill()
                self._nspawn.wait(10)
        leftovers = self._leftovers()
        self._nspawn, self.pid = None, 0
        if leftovers:
            raise AssertionError(f"{self.machine} left behind: {leftovers}")
        return time.monotonic() - started

    def _signal_pid1(self, sig: int) -> None:
        if _pid_ns(self.pid) == self._pid_ns:  # still our PID 1, not a recycled pid
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _wait_nspawn(self, timeout: float) -> bool:
        assert self._nspawn is not None
        try:
            self._nspawn.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _leftovers(self) -> list[str]:
        """Processes still in the container's pid namespace, and cgroups we cannot remove."""
        left = []
        if self._pid_ns is not None:
            left += [
                f"pid {p.name}"
                for p in Path("/proc").iterdir()
                if p.name.isdigit() and _pid_ns(int(p.name)) == self._pid_ns
            ]
        for root in self._cgroups:
            for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)) + [root]:
                if path.is_dir():
                    try:
                        path.rmdir()
                    except OSError as e:
                        left.append(f"cgroup {path}: {e.strerror}")
        return left

    def reboot(self) -> float:
        """Power off and boot again with the same binds; return the boot's seconds."""
        self.shutdown()
        return self.boot()

    def __enter__(self) -> NspawnHost:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


@contextmanager
def booted_or_skip(host: NspawnHost) -> Iterator[NspawnHost]:
    """Boot HOST, skipping the test if the tools are missing or this machine cannot boot one."""
    reason = probe()
    if reason is not None:
        pytest.skip(reason)
    try:
        host.boot()
    except BootError as e:
        pytest.skip(f"cannot boot systemd in systemd-nspawn here: {e}")
    try:
        yield host
    finally:
        host.shutdown()


@pytest.fixture(scope="module")
def nspawn_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHost]:
    """A booted host with the persistent binds, for one test module."""
    test_dir = tmp_path_factory.mktemp("nspawn")
    host = NspawnHost(test_dir, binds=persistent_binds(test_dir))
    with booted_or_skip(host):
        yield host

"""The units in units/ that the packages install: syscontainers-apply.service and the
auto-update service and timer."""

from __future__ import annotations

import subprocess
from pathlib import Path

from syscontainers.unitlinks import install_section
from tests.imagebuild import requires

UNITS = Path(__file__).resolve().parents[2] / "units"
APPLY = UNITS / "syscontainers-apply.service"
AUTO_UPDATE = UNITS / "syscontainers-auto-update.service"
TIMER = UNITS / "syscontainers-auto-update.timer"


def settings(text: str, section: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and not line.startswith("#") and current == section:
            key, _, value = line.partition("=")
            out.setdefault(key, []).extend(value.split())
    return out


def test_the_apply_unit_converges_the_manifest_before_multi_user_without_the_network() -> None:
    text = APPLY.read_text()
    unit, service = settings(text, "Unit"), settings(text, "Service")
    assert unit["ConditionPathExists"] == ["/etc/syscontainers/host.yaml"]
    assert "multi-user.target" in unit["Before"]
    assert "local-fs.target" in unit["After"] and "dbus.socket" in unit["After"]
    assert "network-online.target" not in text.replace("No network-online", "")
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"] == [
        "/usr/bin/syscontainers",
        "apply",
        "--prune",
        "/etc/syscontainers/host.yaml",
    ]
    assert install_section(text) == {"WantedBy": ["multi-user.target"]}


def test_the_auto_update_service_is_a_oneshot_after_the_network_that_the_timer_starts() -> None:
    text = AUTO_UPDATE.read_text()
    unit, service = settings(text, "Unit"), settings(text, "Service")
    assert unit["Wants"] == unit["After"] == ["network-online.target"]
    assert service["Type"] == ["oneshot"] and "RemainAfterExit" not in service
    assert service["ExecStart"] == ["/usr/bin/syscontainers", "auto-update"]
    assert install_section(text) == {}  # started by the timer only


def test_the_auto_update_timer_runs_daily_spread_and_catches_up() -> None:
    text = TIMER.read_text()
    timer = settings(text, "Timer")
    assert timer == {"OnCalendar": ["daily"], "RandomizedDelaySec": ["900"], "Persistent": ["true"]}
    assert install_section(text) == {"WantedBy": ["timers.target"]}


@requires("systemd-analyze")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for unit in sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer")):
        # the package's /usr/bin/syscontainers is not installed here
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/usr/bin/syscontainers", "/bin/true"))
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True
        )
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr

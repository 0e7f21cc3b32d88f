"""syscontainers.dbus against a real, private dbus-daemon started here.

The daemon listens on a socket under the test's directory and on an abstract
name; a second connection plays the other peers (a signal's sender, a service
that never answers, a caller). SystemdManager is pointed at it too: there is no
systemd on this bus, so its calls must come back as SystemdError with a hint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers.dbus import BUS_NAME, BUS_PATH, Connection, Message, MessageType
from syscontainers.errors import DBusTimeoutError, SystemdCallError, SystemdError
from syscontainers.systemd import SystemdManager
from syscontainers.systemd_states import BOOTED_HINT

DAEMON = shutil.which("dbus-daemon") or "/usr/bin/dbus-daemon"
CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  {listen}
  <auth>{auth}</auth>
  {extra}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class Daemon:
    """A dbus-daemon of our own, listening where its config says."""

    def __init__(self, work: Path, listen: list[str], auth: str = "EXTERNAL") -> None:
        if not os.access(DAEMON, os.X_OK):
            pytest.skip("needs dbus-daemon (Debian's dbus package)")
        work.mkdir(parents=True, exist_ok=True)
        config = work / "bus.conf"
        extra = "<allow_anonymous/>" if auth == "ANONYMOUS" else ""
        lines = "\n  ".join(f"<listen>{a}</listen>" for a in listen)
        config.write_text(CONFIG.format(listen=lines, auth=auth, extra=extra))
        self.proc = subprocess.Popen(
            [DAEMON, f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()  # printed once it listens
        assert self.address, "dbus-daemon did not start"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a private bus on a socket path (it also listens on an abstract name)."""
    work = tmp_path_factory.mktemp("dbus")
    abstract = f"syscontainers-test-{os.getpid()}"
    daemon = Daemon(work, [f"unix:path={work}/bus", f"unix:abstract={abstract}"])
    try:
        yield f"unix:path={work}/bus"
    finally:
        daemon.stop()


@pytest.fixture
def conn(bus: str) -> Iterator[Connection]:
    c = Connection.open(bus, 5.0)
    try:
        yield c
    finally:
        c.close()


def bus_call(member: str, signature: str = "", body: list[object] | None = None) -> Message:
    return Message(
        destination=BUS_NAME,
        path=BUS_PATH,
        interface=BUS_NAME,
        member=member,
        signature=signature,
        body=body or [],
    )


def signal(value: str) -> Message:
    return Message.new_signal("/org/example/Test", "org.example.Test", "Said", "s", [value])


def test_hello_gives_a_unique_name_that_the_bus_lists(conn: Connection) -> None:
    assert conn.unique_name.startswith(":")
    reply = conn.call(bus_call("ListNames"), 5.0)
    assert reply.message_type is MessageType.METHOD_RETURN
    assert conn.unique_name in reply.body[0] and BUS_NAME in reply.body[0]
    (bus_id,) = conn.call(bus_call("GetId"), 5.0).body
    assert len(bus_id) == 32 and int(bus_id, 16) >= 0


def test_an_error_reply_is_returned_as_an_error_message(conn: Connection) -> None:
    reply = conn.call(bus_call("GetNameOwner", "s", ["org.example.Nobody"]), 5.0)
    assert reply.message_type is MessageType.ERROR
    assert reply.error_name == "org.freedesktop.DBus.Error.NameHasNoOwner"


def test_systemd_calls_on_a_bus_without_systemd_are_errors_with_a_hint(bus: str) -> None:
    with pytest.raises(SystemdCallError) as info:
        SystemdManager(bus).states(["a.service"])
    assert info.value.error_name == "org.freedesktop.DBus.Error.ServiceUnknown"
    assert "systemd refused ListUnitsByNames" in info.value.message
    assert info.value.hint == BOOTED_HINT
    with SystemdManager(bus) as units, pytest.raises(SystemdCallError):
        units.start("a.service")  # AddMatch works here; Subscribe has no one to answer


def test_the_system_bus_address_comes_from_the_environment(
    bus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
    c = Connection.open(None, 5.0)
    c.close()
    with pytest.raises(SystemdCallError, match="ServiceUnknown|not provided"):
        SystemdManager().daemon_reload()


def test_a_signal_that_arrives_during_a_call_goes_to_the_handler(
    bus: str, conn: Connection
) -> None:
    seen: list[Message] = []
    conn.on_signal = seen.append
    rule = "type='signal',interface='org.example.Test'"
    conn.call(bus_call("AddMatch", "s", [rule]), 5.0)
    other = Connection.open(bus, 5.0)
    try:
        other.send(signal("one"))
        other.call(bus_call("GetId"), 5.0)  # the bus has queued "one" for conn by now
        reply = conn.call(bus_call("GetId"), 5.0)  # so conn reads it before this reply
        assert reply.message_type is MessageType.METHOD_RETURN
        assert [
            (m.member, m.body, m.sender) for m in seen if m.interface == "org.example.Test"
        ] == [("Said", ["one"], other.unique_name)]
        other.send(signal("two"))
        assert conn.pump(lambda: len(seen) >= 2 and seen[-1].body == ["two"], time.monotonic() + 5)
    finally:
        other.close()


def test_pump_returns_false_at_the_deadline(conn: Connection) -> None:
    started = time.monotonic()
    assert not conn.pump(lambda: False, started + 0.3)
    assert time.monotonic() - started >= 0.3
    assert conn.pump(lambda: True, started)  # a condition that holds needs no reading


def test_a_peer_that_never_answers_times_out(bus: str, conn: Connection) -> None:
    silent = Connection.open(bus, 5.0)  # it reads nothing, so it answers nothing
    try:
        ask = Message(
            destination=silent.unique_name, path="/", interface="org.example.X", member="M"
        )
        started = time.monotonic()
        with pytest.raises(DBusTimeoutError, match="did not answer M within 0.3 s"):
            conn.call(ask, 0.3)
        assert time.monotonic() - started >= 0.3
        assert conn.call(bus_call("GetId"), 5.0).message_type is MessageType.METHOD_RETURN
    finally:
        silent.close()


def test_systemd_that_never_answers_is_a_timeout_error(bus: str) -> None:
    squatter = Connection.open(bus, 5.0)
    try:
        reply = squatter.call(bus_call("RequestName", "su", ["org.freedesktop.systemd1", 0]), 5.0)
        assert reply.body == [1]  # the primary owner now
        with pytest.raises(
            SystemdError, match="systemd did not answer Reload within 0.3 s"
        ) as info:
            SystemdManager(bus, timeout=0.3).daemon_reload()
        assert info.value.hint == "see: journalctl -b -u init.scope"
    finally:
        squatter.close()


def test_a_method_call_to_us_is_answered_unknown(bus: str, conn: Connection) -> None:
    caller = Connection.open(bus, 5.0)
    done = threading.Event()
    pumping = threading.Thread(target=lambda: conn.pump(done.is_set, time.monotonic() + 10))
    pumping.start()
    try:
        ask = Message(destination=conn.unique_name, path="/", interface="org.example.X", member="M")
        reply = caller.call(ask, 5.0)
    finally:
        done.set()
        wake = signal("wake")
        wake.destination = conn.unique_name  # a message for the pump to read, then see done
        caller.send(wake)
        caller.close()
        pumping.join(12)
    assert not pumping.is_alive()
    assert reply.message_type is MessageType.ERROR
    assert reply.error_name == "org.freedesktop.DBus.Error.UnknownMethod"


def test_an_abstract_address_and_a_list_of_addresses(bus: str) -> None:
    abstract = f"unix:abstract=syscontainers-test-{os.getpid()}"
    for address in (abstract, f"unix:path=/nonexistent/bus;{abstract}"):
        c = Connection.open(address, 5.0)
        try:
            assert c.call(bus_call("GetId"), 5.0).message_type is MessageType.METHOD_RETURN
        finally:
            c.close()


@pytest.mark.parametrize(
    ("address", "detail"),
    [
        ("unix:path=/nonexistent/bus", "/nonexistent/bus: No such file or directory"),
        (
            "unix:abstract=syscontainers-nobody-here",
            "@syscontainers-nobody-here: Connection refused",
        ),
    ],
)
def test_a_dead_address_is_an_error_with_a_hint(address: str, detail: str) -> None:
    with pytest.raises(SystemdError) as info:
        Connection.open(address, 5.0)
    assert info.value.message == f"cannot reach systemd over D-Bus at {address}: {detail}"
    assert info.value.hint == BOOTED_HINT


def test_a_socket_nobody_listens_on_is_an_error(tmp_path: Path) -> None:
    import socket

    dead = tmp_path / "dead"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))  # the file stays after the close, as after a crashed bus
    with pytest.raises(SystemdError, match="Connection refused") as info:
        SystemdManager(f"unix:path={dead}").states(["a.service"])
    assert info.value.hint == BOOTED_HINT


def test_a_bus_that_refuses_external_auth(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, [f"unix:path={tmp_path}/bus"], auth="ANONYMOUS")
    try:
        with pytest.raises(SystemdError, match="refused authentication as uid") as info:
            Connection.open(daemon.address, 5.0)
        assert info.value.hint == BOOTED_HINT
    finally:
        daemon.stop()


def test_a_bus_that_goes_away_while_we_wait(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, [f"unix:path={tmp_path}/bus"])
    c = Connection.open(daemon.address, 5.0)
    try:
        daemon.stop()
        with pytest.raises(SystemdError, match="closed the connection") as info:
            c.pump(lambda: False, time.monotonic() + 10)
        assert info.value.hint == BOOTED_HINT
    finally:
        c.close()

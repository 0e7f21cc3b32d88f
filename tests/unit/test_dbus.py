"""syscontainers.dbus without a bus: addresses, message framing, the stand-in dbus_next package.

The transport itself is tested against a real dbus-daemon in
tests/integration/test_dbus_daemon.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from syscontainers.dbus import Message, message_length, socket_addresses
from syscontainers.errors import SystemdError


@pytest.mark.parametrize(
    ("address", "sockets"),
    [
        ("unix:path=/run/dbus/system_bus_socket", ["/run/dbus/system_bus_socket"]),
        ("unix:abstract=/tmp/dbus-x,guid=0123", ["\0/tmp/dbus-x"]),
        ("unix:guid=0123,path=/a", ["/a"]),
        ("unix:path=/a%20b%2c%3d", ["/a b,="]),
        ("unix:path=/a;unix:abstract=b;", ["/a", "\0b"]),
    ],
)
def test_addresses(address: str, sockets: list[str]) -> None:
    assert socket_addresses(address) == sockets


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("tcp:host=127.0.0.1,port=1", "unsupported D-Bus address 'tcp:host=127.0.0.1,port=1'"),
        ("unix:tmpdir=/tmp", "unsupported D-Bus address 'unix:tmpdir=/tmp'"),
        ("/run/dbus/system_bus_socket", "unsupported D-Bus address"),
        ("unix:path=/a%2", "has a bad %-escape"),
        ("unix:path=/a%zz", "has a bad %-escape"),
        (";", "is empty"),
    ],
)
def test_bad_addresses(address: str, error: str) -> None:
    with pytest.raises(SystemdError, match=error) as info:
        socket_addresses(address)
    assert info.value.hint is not None and "DBUS_SYSTEM_BUS_ADDRESS" in info.value.hint


def test_message_length_from_the_header() -> None:
    msg = Message(
        destination="a.b", path="/", interface="a.b", member="M", signature="s", body=["x"]
    )
    msg.serial = 7
    data = msg._marshall()  # type: ignore[no-untyped-call]
    assert message_length(data[:16]) == len(data)
    with pytest.raises(ValueError, match="not an endianness mark"):
        message_length(b"x" + data[1:16])


def run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_the_stand_in_package_completes_itself_for_other_users() -> None:
    assert (
        run("""
        import sys
        import syscontainers.dbus
        import dbus_next
        assert "dbus_next.aio" not in sys.modules
        from dbus_next import BusType, Variant
        from dbus_next.aio import MessageBus
        assert dbus_next.BusType is BusType and dbus_next.message.Message is not None
        assert dbus_next.introspection.Node and MessageBus.__module__ == "dbus_next.aio.message_bus"
        try:
            dbus_next.nope
        except AttributeError as e:
            print(e)
    """)
        == "module 'dbus_next' has no attribute 'nope'"
    )


def test_a_dbus_next_imported_first_is_used_as_it_is() -> None:
    assert (
        run("""
        import dbus_next, sys
        whole = sys.modules["dbus_next"]
        import syscontainers.dbus
        from syscontainers.dbus import Message
        print(sys.modules["dbus_next"] is whole, Message is dbus_next.Message)
    """)
        == "True True"
    )

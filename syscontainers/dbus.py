"""A blocking D-Bus connection: a Unix socket, SASL EXTERNAL, Hello, then messages in and out.

With syscontainers.systemd, the only modules that import dbus_next. dbus-next gives
us its message layer (``Message``, its marshaller and ``Unmarshaller``); this module
is the transport, in place of dbus-next's asyncio ``MessageBus``.

Why not ``dbus_next.aio.MessageBus``: every verb that talks to systemd paid for all of
dbus_next at start-up, whose package ``__init__`` imports aio, glib, service and
introspection, and with them asyncio, ssl, concurrent.futures, inspect, logging and
xml.etree: ``python -c "import dbus_next"`` takes 58 ms of CPU where ``python -c pass``
takes 8 ms (issue 12 asks for start-up of any verb <= 30 ms). The message layer alone
(message, constants, signature, errors, the marshaller and unmarshaller) costs about 5 ms.

How: the dbus_next package's ``__init__`` is not run. ``_message_layer`` puts a stand-in
module for the package in ``sys.modules`` (the real package's spec and ``__path__``, so
that its submodules import from where they are), then imports ``dbus_next.errors``
before ``dbus_next.message`` (errors imports message at its end, a cycle the real
``__init__``'s order hides). The stand-in completes itself: the first attribute it
lacks (``dbus_next.BusType``, ``from dbus_next import aio``) runs the real
``__init__.py`` in its namespace, so that other code in the same process sees the
whole package. When dbus_next is already imported, it is used as it is.

The transport: ``Connection.open`` parses the bus address (``unix:path=`` and
``unix:abstract=``, several separated by ``;`` tried in order), connects a blocking
Unix socket, authenticates with SASL EXTERNAL (our uid) and says Hello. ``call``
sends a method call and reads until its reply comes, handing every signal read
meanwhile to ``on_signal``; ``pump`` reads and dispatches until a condition holds or
a deadline passes. Every failure is a SystemdError with a hint.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import sys
import time
import types
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

from syscontainers.errors import DBusTimeoutError, SystemdError
from syscontainers.systemd_states import unreachable_error


def _complete(package: types.ModuleType, init: str) -> Callable[[str], Any]:
    """The stand-in's module ``__getattr__``: a submodule is imported (what ``from . import
    introspection`` inside dbus_next needs); any other name runs the real ``__init__`` once."""

    def complete(name: str) -> Any:
        import importlib
        from importlib.machinery import PathFinder

        if PathFinder.find_spec(f"dbus_next.{name}", package.__path__) is not None:
            return importlib.import_module(f"dbus_next.{name}")
        namespace = vars(package)
        if namespace.get("__getattr__") is complete:
            with open(init, "rb") as f:
                exec(compile(f.read(), init, "exec"), namespace)
            del namespace["__getattr__"]  # now the package as dbus-next made it
        try:
            return namespace[name]
        except KeyError:
            raise AttributeError(f"module 'dbus_next' has no attribute {name!r}") from None

    return complete


def _message_layer() -> None:
    """Make ``dbus_next.message`` importable without running the package's ``__init__``."""
    if "dbus_next" in sys.modules:
        return
    spec = find_spec("dbus_next")
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError("No module named 'dbus_next'", name="dbus_next")
    package = types.ModuleType("dbus_next")
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__loader__ = spec.loader
    package.__path__ = list(spec.submodule_search_locations)
    package.__package__ = "dbus_next"
    vars(package)["__getattr__"] = _complete(package, spec.origin)
    sys.modules["dbus_next"] = package
    try:
        import dbus_next.errors  # noqa: F401 - before dbus_next.message: see the docstring
    except BaseException:
        del sys.modules["dbus_next"]  # no half-made package left for the next importer
        raise


_message_layer()

from dbus_next._private.unmarshaller import Unmarshaller  # noqa: E402
from dbus_next.constants import MessageFlag, MessageType  # noqa: E402
from dbus_next.message import Message  # noqa: E402

__all__ = [  # with dbus-next's message layer, which callers must import from here (see above)
    "BUS_NAME",
    "BUS_PATH",
    "Connection",
    "Message",
    "MessageType",
    "socket_addresses",
]

SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
_HEADER = 16  # endianness, type, flags, version, body length, serial, fields length
_MAX_MESSAGE = 128 * 1024 * 1024  # the D-Bus specification's limit
_UNSUPPORTED_HINT = (
    "set DBUS_SYSTEM_BUS_ADDRESS to a unix:path=SOCKET or unix:abstract=NAME address"
)


def socket_addresses(address: str) -> list[str]:
    """The socket addresses to try, in order, for a D-Bus ADDRESS (``;``-separated)."""
    found = [_socket_address(entry) for entry in address.split(";") if entry]
    if not found:
        raise SystemdError(f"the D-Bus address {address!r} is empty", hint=_UNSUPPORTED_HINT)
    return found


def _socket_address(entry: str) -> str:
    transport, colon, rest = entry.partition(":")
    keys = dict(kv.partition("=")[::2] for kv in rest.split(",") if kv)
    if transport == "unix" and colon:
        if "path" in keys:
            return _unescape(entry, keys["path"])
        if "abstract" in keys:
            return "\0" + _unescape(entry, keys["abstract"])
    raise SystemdError(
        f"unsupported D-Bus address {entry!r}: only unix:path= and unix:abstract= can be used",
        hint=_UNSUPPORTED_HINT,
    )


def _unescape(entry: str, value: str) -> str:
    """VALUE with the address syntax's %XX escapes decoded."""
    if "%" not in value:
        return value
    first, *escaped = value.split("%")
    out = bytearray(first.encode())
    for part in escaped:
        digits = part[:2]
        if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise SystemdError(
                f"the D-Bus address {entry!r} has a bad %-escape", hint=_UNSUPPORTED_HINT
            )
        out.append(int(digits, 16))
        out += part[2:].encode()
    return os.fsdecode(bytes(out))


def message_length(head: bytes | bytearray) -> int:
    """The whole length of the message whose first 16 bytes are HEAD."""
    order = {ord("l"): "<", ord("B"): ">"}.get(head[0])
    if order is None:
        raise ValueError(f"a message starts with byte {head[0]!r}, not an endianness mark")
    body, _serial, fields = struct.unpack_from(order + "III", head, 4)
    header = _HEADER + fields
    return int(header + (-header & 7) + body)


class Connection:
    """One authenticated bus connection; close it when done."""

    def __init__(self, sock: socket.socket, where: str, timeout: float) -> None:
        self._sock = sock
        self._where = where
        self._timeout = timeout  # for a send: the bus reads what we write at once
        self._buf = bytearray()
        self._serial = 0
        self.on_signal: Callable[[Message], None] = lambda msg: None
        self.unique_name = ""

    @classmethod
    def open(cls, address: str | None, timeout: float) -> Connection:
        """Connect to ADDRESS (None: the system bus), authenticate and say Hello."""
        where = address or "the system bus"
        chosen = address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
        deadline = time.monotonic() + timeout
        conn = cls(_connect(socket_addresses(chosen), where, timeout), where, timeout)
        try:
            conn._authenticate(deadline)
            hello = Message(destination=BUS_NAME, path=BUS_PATH, interface=BUS_NAME, member="Hello")
            reply = conn.call(hello, max(0.0, deadline - time.monotonic()))
            if reply.message_type is MessageType.ERROR:
                raise conn._broken(f"the bus refused Hello: {reply.error_name}")
            conn.unique_name = str(reply.body[0])
        except DBusTimeoutError as e:
            conn.close()
            raise conn._broken(f"no answer within {timeout:g} s") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Release the socket (the bus forgets our matches with it)."""
        self._sock.close()

    def call(self, msg: Message, timeout: float) -> Message:
        """Send the method call MSG and return its reply (a method return or an error)."""
        serial = self.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply is None:
                raise DBusTimeoutError(
                    f"{msg.destination} did not answer {msg.member} within {timeout:g} s",
                    hint="see: journalctl -b",
                )
            if reply.reply_serial == serial and reply.message_type in _REPLIES:
                return reply
            self._dispatch(reply)

    def pump(self, until: Callable[[], bool], deadline: float) -> bool:
        """Read and dispatch messages until UNTIL() holds (True) or DEADLINE passes (False)."""
        while not until():
            msg = self._next(deadline)
            if msg is None:
                return until()
            self._dispatch(msg)
        return True

    def send(self, msg: Message) -> int:
        """Send MSG with the next serial; return the serial."""
        self._serial += 1
        msg.serial = self._serial
        self._sendall(msg._marshall())  # type: ignore[no-untyped-call]
        return self._serial

    def _dispatch(self, msg: Message) -> None:
        if msg.message_type is MessageType.SIGNAL:
            self.on_signal(msg)
        elif msg.message_type is MessageType.METHOD_CALL:
            # We export no objects; answer as a peer does, so that no caller waits for us.
            if not msg.flags & MessageFlag.NO_REPLY_EXPECTED:
                error = "org.freedesktop.DBus.Error.UnknownMethod"
                self.send(Message.new_error(msg, error, f"{msg.member} is not served here"))
        # Other replies belong to calls given up on (after a timeout): dropped.

    def _next(self, deadline: float) -> Message | None:
        """The next message, read by DEADLINE, or None."""
        while True:
            if len(self._buf) >= _HEADER:
                try:
                    length = message_length(self._buf)
                except ValueError as e:
                    raise self._broken(str(e)) from e
                if length > _MAX_MESSAGE:
                    raise self._broken(f"a message of {length} bytes is over the limit")
                if len(self._buf) >= length:
                    return self._unmarshall(length)
            if not self._receive(deadline):
                return None

    def _unmarshall(self, length: int) -> Message:
        data = bytes(self._buf[:length])
        del self._buf[:length]
        try:
            msg = Unmarshaller(io.BytesIO(data)).unmarshall()  # type: ignore[no-untyped-call]
        except Exception as e:  # dbus-next raises ValueError, KeyError and more on bad input
            raise self._broken(f"an unreadable message ({e or type(e).__name__})") from e
        if msg is None:
            raise self._broken("a truncated message")
        return msg  # type: ignore[no-any-return]

    def _receive(self, deadline: float) -> bool:
        """Read what the socket has into the buffer; False once DEADLINE passes first."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return False
        except OSError as e:
            raise self._broken(str(e)) from e
        if not data:
            raise self._broken("the bus closed the connection")
        self._buf += data
        return True

    def _sendall(self, data: bytes | bytearray) -> None:
        self._sock.settimeout(self._timeout)
        try:
            self._sock.sendall(data)
        except OSError as e:  # a timeout too: the bus stopped reading from us
            raise self._broken(str(e) or type(e).__name__) from e

    def _authenticate(self, deadline: float) -> None:
        """SASL EXTERNAL: we are who the kernel says we are (our uid)."""
        uid = str(os.getuid()).encode().hex()
        self._sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        while b"\r\n" not in self._buf:
            if not self._receive(deadline):
                raise DBusTimeoutError("no answer to AUTH", hint="see: journalctl -b")
        line, _, rest = bytes(self._buf).partition(b"\r\n")
        self._buf = bytearray(rest)
        if not line.startswith(b"OK "):
            said = line.decode(errors="replace")
            raise self._broken(f"the bus refused authentication as uid {os.getuid()} ({said})")
        self._sendall(b"BEGIN\r\n")

    def _broken(self, detail: str) -> SystemdError:
        return unreachable_error(self._where, detail)


_REPLIES = (MessageType.METHOD_RETURN, MessageType.ERROR)


def _connect(addresses: list[str], where: str, timeout: float) -> socket.socket:
    """A connected, blocking Unix socket: the first of ADDRESSES that answers."""
    failures = []
    for address in addresses:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as e:
            sock.close()
            shown = "@" + address[1:] if address.startswith("\0") else address
            failures.append(f"{shown}: {e.strerror or e}")
            continue
        return sock
    raise unreachable_error(where, "; ".join(failures))

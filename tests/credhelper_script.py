"""A real docker-credential-NAME executable for tests: get/store/erase on a JSON file.

``write_helper(bin_dir, name, secrets)`` writes ``bin_dir/docker-credential-NAME``
(a python3 script) whose store is ``bin_dir/NAME.json`` (host -> [user, secret])
and which appends each call (``verb host``) to ``bin_dir/NAME.log``, so tests can
see which tool asked for what. ``fail=True`` makes every call exit 1 with a message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

_SCRIPT = """#!{python}
import json, sys
store, log = {store!r}, {log!r}
verb = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
with open(store) as f:
    creds = json.load(f)
if {fail!r}:
    print("the keyring is locked", file=sys.stderr)
    sys.exit(1)
if verb == "store":
    doc = json.loads(data)
    host = doc["ServerURL"]
    creds[host] = [doc["Username"], doc["Secret"]]
    with open(store, "w") as f:
        json.dump(creds, f)
else:
    host = data.strip()
with open(log, "a") as f:
    f.write(verb + " " + host + "\\n")
if verb == "get":
    if host not in creds:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = creds[host]
    json.dump({{"ServerURL": host, "Username": user, "Secret": secret}}, sys.stdout)
elif verb == "erase":
    if creds.pop(host, None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    with open(store, "w") as f:
        json.dump(creds, f)
elif verb != "store":
    sys.exit(2)
"""


def write_helper(
    bin_dir: Path, name: str, secrets: dict[str, tuple[str, str]], fail: bool = False
) -> Path:
    """Write docker-credential-NAME into BIN_DIR; returns its log file."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    store, log = bin_dir / f"{name}.json", bin_dir / f"{name}.log"
    store.write_text(json.dumps({k: list(v) for k, v in secrets.items()}))
    log.write_text("")
    program = bin_dir / f"docker-credential-{name}"
    program.write_text(
        _SCRIPT.format(python=sys.executable, store=str(store), log=str(log), fail=fail)
    )
    program.chmod(0o755)
    return log


def calls(log: Path) -> list[str]:
    """The 'verb host' lines the helper logged."""
    return log.read_text().splitlines()


def stored(bin_dir: Path, name: str) -> dict[str, list[str]]:
    """What the helper NAME holds now."""
    result: dict[str, list[str]] = json.loads((bin_dir / f"{name}.json").read_text())
    return result

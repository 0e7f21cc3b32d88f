"""Docker credential helpers: ``docker-credential-NAME get|store|erase`` through process.

The protocol is docker's (docker-credential-helpers): ``get`` and ``erase``
read the registry host on stdin; ``get`` answers ``{"ServerURL", "Username",
"Secret"}`` on stdout and ``store`` reads that document on stdin. A helper
that has nothing for the host exits non-zero saying "credentials not found".
A ``Username`` of ``<token>`` means the secret is an identity (refresh) token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from syscontainers import process
from syscontainers.errors import AuthError, CommandError
from syscontainers.record import record

PREFIX = "docker-credential-"
TIMEOUT = 60.0  # a helper may ask a keyring or an agent; never wait forever
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NOT_FOUND = "credentials not found"


@record
class Helper:
    """One helper and where it was configured (for messages)."""

    name: str  # NAME of docker-credential-NAME
    origin: str  # e.g. 'credHelpers in /root/.docker/config.json'

    @property
    def program(self) -> str:
        """The executable run for this helper."""
        return PREFIX + self.name

    def _hint(self) -> str:
        return (
            f"install {self.program} on PATH, or remove the entry ({self.origin}); "
            "--authfile FILE uses only FILE"
        )

    def _run(self, verb: str, stdin: str, env: Mapping[str, str] | None) -> process.Result:
        if not _NAME.match(self.name):
            raise AuthError(
                f"credential helper name {self.name!r} ({self.origin}) is not a plain name",
                hint=self._hint(),
            )
        try:
            return process.run(
                [self.program, verb], check=False, input_text=stdin, env=env, timeout=TIMEOUT
            )
        except CommandError as e:
            raise AuthError(
                f"credential helper {self.program} ({self.origin}) cannot run: {e.message}",
                hint=self._hint(),
            ) from e

    def _failed(self, verb: str, host: str, result: process.Result) -> AuthError:
        detail = (result.stdout.strip() or result.stderr.strip() or "no output").splitlines()[-1]
        return AuthError(
            f"credential helper {self.program} {verb} for {host} failed "
            f"(exit status {result.returncode}): {detail[:200]}",
            hint=f"check the helper ({self.origin}), or log in again",
        )

    def get(self, host: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
        """(username, secret) the helper has for HOST, or None if it has none."""
        result = self._run("get", host, env)
        if result.returncode != 0:
            if _NOT_FOUND in (result.stdout + result.stderr).lower():
                return None
            raise self._failed("get", host, result)
        try:
            doc = json.loads(result.stdout)
            username, secret = doc["Username"], doc["Secret"]
        except (ValueError, KeyError, TypeError) as e:
            raise AuthError(
                f"credential helper {self.program} get for {host} did not answer "
                '{"Username": ..., "Secret": ...}',
                hint=f"check the helper ({self.origin})",
            ) from e
        if not isinstance(username, str) or not isinstance(secret, str):
            raise AuthError(
                f"credential helper {self.program} sent a non-string credential",
                hint=f"check the helper ({self.origin})",
            )
        if not secret:
            return None
        return username, secret

    def store(
        self, host: str, username: str, secret: str, env: Mapping[str, str] | None = None
    ) -> None:
        """Save USERNAME and SECRET for HOST in the helper."""
        doc = json.dumps({"ServerURL": host, "Username": username, "Secret": secret})
        result = self._run("store", doc, env)
        if result.returncode != 0:
            raise self._failed("store", host, result)

    def erase(self, host: str, env: Mapping[str, str] | None = None) -> bool:
        """Forget HOST in the helper; False if it had nothing for it."""
        result = self._run("erase", host, env)
        if result.returncode == 0:
            return True
        if _NOT_FOUND in (result.stdout + result.stderr).lower():
            return False
        raise self._failed("erase", host, result)

"""How a registry token is fetched: the WWW-Authenticate challenge, the token request, its answer.

The exchange, as the distribution token spec and containers/image do it
(``registry.http`` sends the requests; everything here is pure):

1. ``GET /v2/`` answers 401 with ``WWW-Authenticate``; ``parse_challenges``
   reads it and ``pick`` prefers Bearer, then Basic (``challenge_of`` does
   both; no challenge: anonymous access).
2. Basic: every request carries ``basic_header(credentials)``.
3. Bearer: ``token_request`` asks the challenge's realm for a token for the
   scope ``repository:REPO:pull`` (``scope_for``), with the challenge's
   ``service``: a GET with the username and password as Basic auth (or none,
   anonymously), or, for an identity token, an OAuth2 ``refresh_token`` POST.
4. ``refused`` and ``token_server_failed`` name what went wrong with a 401/403
   or any other status; ``token_from`` takes ``token`` or ``access_token``
   from the JSON answer.
5. ``registry.http`` caches the token per host and scope, sends it as
   ``Authorization: Bearer``, and on a later 401 reads the new challenge,
   drops the cached tokens and fetches again, once.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from syscontainers.errors import AuthError
from syscontainers.record import record
from syscontainers.registry.credentials import Credentials

OPERATOR_HINT = "the registry or its token server is misconfigured; tell its operator"
_PARAM_RE = re.compile(r'([^\s=,]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?')


@record
class Challenge:
    """One WWW-Authenticate challenge: a scheme (lower case) and its parameters."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, key: str) -> str:
        """One parameter, or ''."""
        return dict(self.params).get(key, "")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate header into its challenges."""
    out: list[Challenge] = []
    for key, value in _PARAM_RE.findall(header):
        if not value and not key.endswith("="):
            out.append(Challenge(key.lower()))
        elif out:
            text = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
            out[-1] = Challenge(out[-1].scheme, (*out[-1].params, (key.lower(), text)))
    return out


def pick(challenges: list[Challenge]) -> Challenge | None:
    """The challenge to answer: Bearer before Basic; None for any other scheme."""
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None


def challenge_of(header: str) -> Challenge | None:
    """The challenge to answer in a WWW-Authenticate HEADER, or None."""
    return pick(parse_challenges(header))


def basic_header(creds: Credentials) -> str:
    """The Authorization header value of Basic auth with CREDS."""
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"


def scope_for(repo: str) -> str:
    """The token scope that pulls from REPO ('' for none, as login asks)."""
    return f"repository:{repo}:pull" if repo else ""


def token_request(
    host: str, challenge: Challenge, scope: str, creds: Credentials | None
) -> tuple[str, dict[str, Any]]:
    """The realm URL and the request options that ask it for a token for SCOPE."""
    realm = challenge.param("realm")
    if not realm.startswith(("https://", "http://")):
        raise AuthError(
            f"registry {host} sent a Bearer challenge without a realm URL", hint=OPERATOR_HINT
        )
    params = {k: v for k, v in (("service", challenge.param("service")), ("scope", scope)) if v}
    request: dict[str, Any] = {"params": params}
    if creds is not None and creds.identity_token:  # OAuth2: trade it for an access token
        form = {"grant_type": "refresh_token", "refresh_token": creds.password}
        request = {"method": "POST", "data": {**form, "client_id": "syscontainers", **params}}
    elif creds is not None:
        request["auth"] = (creds.username, creds.password)
    return realm, request


def refused(host: str, creds: Credentials | None, detail: str) -> AuthError:
    """The error for a token server's 401 or 403 (DETAIL: the registry's own words)."""
    who = f"the credentials of {creds.username!r}" if creds else "anonymous access"
    who = "the identity token" if creds and creds.identity_token else who
    return AuthError(
        f"registry {host} refused {who}{detail}",
        hint=f"log in with 'syscontainers login {host}' or check --authfile",
    )


def token_server_failed(realm: str, status: int) -> AuthError:
    """The error for any other answer than 200 from the token server."""
    return AuthError(
        f"token server {realm} answered HTTP {status}",
        hint="check that the token server is healthy, then try again",
    )


def token_from(realm: str, doc: object) -> str:
    """The token in the token server's JSON answer DOC (``token``, else ``access_token``)."""
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthError(f"token server {realm} sent no token", hint=OPERATOR_HINT)
    return token

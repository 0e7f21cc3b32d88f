"""HTTP to registries over the distribution API: the one module that imports requests.

It finds each host's scheme with a ``GET /v2/`` ping (https; plain http only
for insecure hosts), answers the ``WWW-Authenticate`` challenge (anonymous,
Bearer tokens fetched from the realm per repository scope, or Basic: the
exchange is drawn in ``registry.token``, which builds each step), repeats
requests after connection errors and 5xx/429 answers with backoff, and hands
out blobs as resumable streams that reopen with ``Range`` requests. TLS trust
per host comes from ``registry.tls``. Each thread gets its own session; the
per-host state (scheme, challenge, tokens) is shared under a lock.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from requests import exceptions as rex
from urllib3 import exceptions as urllib3_errors
from urllib3.exceptions import InsecureRequestWarning

from syscontainers import __version__
from syscontainers.errors import (
    AuthError,
    ManifestError,
    RegistryError,
    RegistryNotFoundError,
    RegistryUnreachableError,
    TlsError,
)
from syscontainers.record import record
from syscontainers.registry import token
from syscontainers.registry.credentials import Credentials
from syscontainers.registry.stream import (
    Body,
    Counters,
    Interrupted,
    ResumableStream,
    RetryPolicy,
    TransferStats,
)
from syscontainers.registry.tls import HostTls, make_context
from syscontainers.registry.token import Challenge

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs

DEFAULT_RETRY = RetryPolicy()
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK = 256 << 10
# Every body is read with a cap (containers/image's iolimits use the same sizes): a registry
# that answers with an endless body must not grow us until MemoryError.
ERROR_BODY_LIMIT = 1 << 20
TOKEN_BODY_LIMIT = 1 << 20
MAX_REDIRECTS = 10  # as Go's net/http, which the containers tools use
_TRANSIENT = (rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError)
_API_HOSTS = {"docker.io": "registry-1.docker.io"}
_NETWORK_HINT = "check the network, then try again"

CredentialSource = Callable[[str, str], Credentials | None]  # (registry, repository)
TlsSource = Callable[[str], HostTls]  # registry host -> its TLS settings


@record
class Fetched:
    """A small document fetched whole: a manifest."""

    data: bytes
    content_type: str
    digest_header: str  # Docker-Content-Digest, or ""


class _Host:
    """Mutable per-host state: scheme, challenge, tokens (guarded by ``lock``)."""

    def __init__(self, name: str, tls: HostTls) -> None:
        self.name = name
        self.api = _API_HOSTS.get(name, name)
        self.tls = tls
        self.base = ""
        self.challenge: Challenge | None = None
        self.tokens: dict[str, str] = {}
        self.lock = threading.Lock()


class _TlsAdapter(requests.adapters.HTTPAdapter):
    """Uses our SSL context for each host instead of requests' CA bundle."""

    def __init__(self, context_for: Callable[[str], ssl.SSLContext]) -> None:
        self._context_for = context_for
        super().__init__(pool_maxsize=16)

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        context = self._context_for(urlsplit(str(request.url)).netloc)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        pool.pop("cert_file", None)
        pool.pop("key_file", None)
        pool["ssl_context"] = context
        pool["cert_reqs"] = "CERT_NONE" if context.verify_mode == ssl.CERT_NONE else "CERT_REQUIRED"
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Leave verification to the SSL context chosen above."""


def _quiet_insecure_warnings() -> None:
    """The user asked for unverified TLS; urllib3 must not print a warning per request."""
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def _reason(error: BaseException) -> str:
    text = str(error)
    for pattern in (
        r"certificate verify failed: ([^(')\]]+)",
        r"\[SSL: [A-Z_]+\] ([^(')\]]+)",
        r"\[Errno -?\d+\] ([^'\")]+)",
        r"(Connection (?:aborted|reset|refused)[^'\")]*)",
        r"(Read timed out)",
    ):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip(" .")
    return f"{type(error).__name__}: {text[:160]}"


def _never_answers(error: BaseException) -> bool:
    """True if ERROR says the host's name does not resolve or its port refuses connections,
    which a retry a second later does not change (unlike a timeout or a reset connection)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    if isinstance(reason, urllib3_errors.NameResolutionError):
        return True
    return isinstance(reason, urllib3_errors.NewConnectionError) and isinstance(
        reason.__cause__, ConnectionRefusedError
    )


class _TooLarge(Exception):
    """A body longer than the limit its reader set (internal)."""


def _read_body(resp: requests.Response, limit: int) -> bytes:
    """RESP's whole body, decoded; _TooLarge past LIMIT bytes, requests' errors as they come."""
    data = bytearray()
    for chunk in resp.iter_content(CHUNK):
        data += chunk
        if len(data) > limit:
            raise _TooLarge(limit)
    return bytes(data)


def _error_detail(resp: requests.Response) -> str:
    """': CODE message' from a registry's JSON error body, or '' (an odd or huge body)."""
    try:
        doc = json.loads(_read_body(resp, ERROR_BODY_LIMIT))
        first = doc["errors"][0]
        return f": {first.get('code', '')} {first.get('message', '')}"[:300].rstrip()
    except (
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        _TooLarge,
        rex.RequestException,
    ):
        return ""


def _redirect_error(what: str, netloc: str) -> RegistryError:
    return RegistryError(
        f"{what}: {netloc} redirected more than {MAX_REDIRECTS} times (a redirect loop)",
        hint="the registry, or a proxy or storage behind it, is misconfigured; "
        "check the registry's address and tell its operator",
    )


def _encoding_error(what: str, resp: requests.Response, e: BaseException) -> RegistryError:
    encoding = resp.headers.get("Content-Encoding", "")
    return RegistryError(
        f"{what}: the body is labelled Content-Encoding: {encoding} but cannot be decoded "
        f"that way ({_reason(e)})",
        hint="the registry or a proxy in front of it sends a false Content-Encoding header; "
        "tell its operator",
    )


class RegistryClient:
    """Talks to any number of registries on behalf of one command."""

    def __init__(
        self,
        credentials: CredentialSource,
        tls_for: TlsSource,
        policy: RetryPolicy = DEFAULT_RETRY,
        timeout: tuple[float, float] = (30.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._credentials = credentials
        self._tls_for = tls_for
        self.policy = policy
        self._timeout = timeout
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}
        self._creds: dict[tuple[str, str], Credentials | None] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self.counters = Counters()

    # ---- plumbing ------------------------------------------------------------

    def stats(self) -> TransferStats:
        """Bytes, retries and resumes so far."""
        return self.counters.snapshot()

    def close(self) -> None:
        """Close every session's connections."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _credentials_for(self, host: str, repo: str) -> Credentials | None:
        """The credentials for HOST/REPO, read from the auth files once per command."""
        key = (host, repo)
        with self._lock:
            if key in self._creds:
                return self._creds[key]
        creds = self._credentials(host, repo)
        with self._lock:
            self._creds[key] = creds
        return creds

    def _host(self, name: str) -> _Host:
        with self._lock:
            if name not in self._hosts:
                self._hosts[name] = _Host(name, self._tls_for(name))
                if not self._hosts[name].tls.verify:
                    _quiet_insecure_warnings()
            return self._hosts[name]

    def _context_for(self, netloc: str) -> ssl.SSLContext:
        with self._lock:
            if netloc not in self._contexts:
                owner = next((h for h in self._hosts.values() if h.api == netloc), None)
                self._contexts[netloc] = make_context(owner.tls if owner else HostTls())
            return self._contexts[netloc]

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"syscontainers/{__version__}"
            session.max_redirects = MAX_REDIRECTS
            session.mount("https://", _TlsAdapter(self._context_for))
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _send(
        self, url: str, what: str, first: bool = False, method: str = "GET", **kwargs: Any
    ) -> requests.Response:
        """GET (or METHOD) URL, repeating it after transient failures; raise RegistryError at
        the end. The FIRST request to a host is not repeated if it cannot be reached at all."""
        failures = 0
        netloc = urlsplit(url).netloc
        while True:
            try:
                resp = self._session().request(
                    method, url, stream=True, timeout=self._timeout, **kwargs
                )
            except rex.SSLError as e:
                raise TlsError(
                    f"{what}: TLS with {netloc} failed: {_reason(e)}",
                    hint=f"put the registry's CA in certs.d/{netloc}/ca.crt, pass --cert-dir, "
                    "or (unsafely) --tls-verify=false",
                ) from e
            except rex.TooManyRedirects as e:
                raise _redirect_error(what, netloc) from e
            except _TRANSIENT as e:
                if first and _never_answers(e):
                    raise RegistryUnreachableError(netloc, _reason(e)) from e
                failures += 1
                if failures >= self.policy.attempts:
                    raise RegistryError(
                        f"{what}: cannot reach {netloc}: {_reason(e)} (tried {failures} times)",
                        hint="check that the registry is up and reachable",
                    ) from e
                self._retry(failures, None)
                continue
            except (rex.RequestException, ValueError) as e:  # a bad redirect target, ...
                raise RegistryError(
                    f"{what}: {netloc} gave an answer that cannot be followed: {_reason(e)}",
                    hint="the registry, or a proxy in front of it, is misconfigured; "
                    "check the registry's address and tell its operator",
                ) from e
            if resp.status_code in RETRY_STATUSES and failures + 1 < self.policy.attempts:
                failures += 1
                resp.close()
                self._retry(failures, resp.headers.get("Retry-After"))
                continue
            return resp

    def _retry(self, failures: int, retry_after: str | None) -> None:
        self.counters.add("retries")
        self._sleep(self.policy.delay(failures, retry_after))

    # ---- scheme and auth ------------------------------------------------------

    def _ping(self, host: _Host) -> None:
        with host.lock:
            if host.base:
                return
            schemes = ("https",) if host.tls.verify else ("https", "http")
            for scheme in schemes:
                base = f"{scheme}://{host.api}"
                try:
                    resp = self._send(f"{base}/v2/", f"registry {host.name}", first=True)
                except (TlsError, RegistryUnreachableError):
                    if scheme == schemes[-1]:
                        raise
                    continue
                with resp:
                    self._read_ping(host, resp)
                host.base = base
                return

    def _read_ping(self, host: _Host, resp: requests.Response) -> None:
        if resp.status_code == 401:
            host.challenge = token.challenge_of(resp.headers.get("WWW-Authenticate", ""))
        elif resp.status_code != 200:
            raise RegistryError(
                f"{host.name} does not answer as a registry: GET /v2/ gave HTTP {resp.status_code}",
                hint="check the registry name and port",
            )

    def _auth_headers(self, host: _Host, repo: str) -> dict[str, str]:
        challenge = host.challenge
        if challenge is None:
            return {}
        creds = self._credentials_for(host.name, repo)
        if challenge.scheme == "basic":
            if creds is None or creds.identity_token:  # a refresh token is for Bearer only
                return {}
            return {"Authorization": token.basic_header(creds)}
        scope = token.scope_for(repo)
        with host.lock:
            bearer = host.tokens.get(scope)
            if bearer is None:
                bearer = self._fetch_token(host, challenge, scope, creds)
                host.tokens[scope] = bearer
        return {"Authorization": f"Bearer {bearer}"}

    def _fetch_token(
        self, host: _Host, challenge: Challenge, scope: str, creds: Credentials | None
    ) -> str:
        realm, request = token.token_request(host.name, challenge, scope, creds)
        with self._send(realm, f"token for {host.name}", **request) as resp:
            if resp.status_code in (401, 403):
                raise token.refused(host.name, creds, _error_detail(resp))
            if resp.status_code != 200:
                raise token.token_server_failed(realm, resp.status_code)
            return token.token_from(realm, self._token_document(realm, resp))

    @staticmethod
    def _token_document(realm: str, resp: requests.Response) -> object:
        hint = "the registry's token server is misbehaving; tell its operator"
        try:
            return json.loads(_read_body(resp, TOKEN_BODY_LIMIT))
        except _TooLarge as e:
            raise AuthError(
                f"token server {realm} sent more than {TOKEN_BODY_LIMIT} bytes", hint=hint
            ) from e
        except rex.ContentDecodingError as e:
            raise _encoding_error(f"token from {realm}", resp, e) from e
        except _TRANSIENT as e:
            raise AuthError(
                f"token server {realm}: the answer broke off: {_reason(e)}", hint=_NETWORK_HINT
            ) from e
        except ValueError as e:
            raise AuthError(f"token server {realm} sent no JSON", hint=hint) from e

    def _refresh_auth(self, host: _Host, repo: str, resp: requests.Response) -> None:
        challenge = token.challenge_of(resp.headers.get("WWW-Authenticate", ""))
        with host.lock:
            host.challenge = challenge or host.challenge
            host.tokens.clear()
        if host.challenge is None or (
            host.challenge.scheme == "basic" and self._credentials_for(host.name, repo) is None
        ):
            raise AuthError(
                f"registry {host.name} requires authentication for {repo or 'access'}",
                hint=f"log in with 'syscontainers login {host.name}' or pass --authfile",
            )

    def _get(
        self, host_name: str, repo: str, path: str, what: str, headers: Mapping[str, str]
    ) -> requests.Response:
        """An authenticated GET of PATH; non-success answers become errors naming WHAT."""
        host = self._host(host_name)
        self._ping(host)
        refreshed = False
        while True:
            hdrs = {**headers, **self._auth_headers(host, repo)}
            resp = self._send(f"{host.base}{path}", what, headers=hdrs)
            if resp.status_code == 401 and not refreshed:
                refreshed = True
                with resp:
                    self._refresh_auth(host, repo, resp)
                continue
            if resp.status_code >= 400:
                with resp:
                    raise self._status_error(resp, host.name, what)
            return resp

    @staticmethod
    def _status_error(resp: requests.Response, host: str, what: str) -> RegistryError:
        detail = _error_detail(resp)
        if resp.status_code in (401, 403):
            return AuthError(
                f"{what}: registry {host} denied access (HTTP {resp.status_code}{detail})",
                hint=f"log in with 'syscontainers login {host}' or check --authfile",
            )
        if resp.status_code == 404:
            return RegistryNotFoundError(
                f"{what}: not found on registry {host}{detail}",
                hint="check the repository name and the tag or digest",
            )
        return RegistryError(
            f"{what}: registry {host} answered HTTP {resp.status_code}{detail}",
            hint="check that the registry is healthy, then try again",
        )

    # ---- the API ------------------------------------------------------------

    def check_login(self, host_name: str, creds: Credentials) -> None:
        """Check CREDS against HOST_NAME; raise AuthError if it refuses them."""
        host = self._host(host_name)
        self._ping(host)
        challenge = host.challenge
        if challenge is None:
            return
        if challenge.scheme == "bearer":
            self._fetch_token(host, challenge, "", creds)
            return
        basic = (creds.username, creds.password)
        with self._send(f"{host.base}/v2/", f"login to {host_name}", auth=basic) as resp:
            if resp.status_code != 200:
                raise AuthError(
                    f"registry {host_name} refused the credentials of {creds.username!r} "
                    f"(HTTP {resp.status_code})",
                    hint="check the username and password",
                )

    def get_manifest(
        self, host: str, repo: str, reference: str, accept: tuple[str, ...], limit: int
    ) -> Fetched:
        """Fetch the manifest REFERENCE (a tag or digest) of REPO, up to LIMIT bytes."""
        what = f"manifest {host}/{repo}{'@' if ':' in reference else ':'}{reference}"
        headers = {"Accept": ", ".join(accept)}
        with self._get(host, repo, f"/v2/{repo}/manifests/{reference}", what, headers) as resp:
            try:
                data = _read_body(resp, limit)
            except _TooLarge as e:
                raise ManifestError(f"{what} is larger than {limit} bytes") from e
            except rex.ContentDecodingError as e:
                raise _encoding_error(what, resp, e) from e
            except _TRANSIENT as e:
                raise RegistryError(
                    f"{what}: the download broke off: {_reason(e)}", hint=_NETWORK_HINT
                ) from e
            return Fetched(
                data,
                resp.headers.get("Content-Type", "").split(";")[0].strip(),
                resp.headers.get("Docker-Content-Digest", ""),
            )

    def open_blob(self, host: str, repo: str, digest: str, size: int) -> ResumableStream:
        """A resumable stream of the blob DIGEST (SIZE bytes) of REPO."""
        what = f"blob {digest} of {host}/{repo}"

        def opener(start: int) -> Body:
            headers = {"Accept-Encoding": "identity"}
            if start:
                headers["Range"] = f"bytes={start}-"
            resp = self._get(host, repo, f"/v2/{repo}/blobs/{digest}", what, headers)
            return Body(_body_start(resp, start), _chunks(resp), resp.close)

        return ResumableStream(opener, size, what, self.counters, self.policy, self._sleep)

    def get_optional(self, url: str, what: str, limit: int) -> bytes | None:
        """GET URL without credentials (a lookaside signature): its body, or None on HTTP 404.
        Retried as every request; TLS from the certs.d of URL's HOST[:PORT]. Another status, a
        body over LIMIT bytes or a failed connection raises RegistryError naming WHAT."""
        netloc = urlsplit(url).netloc
        self._host(netloc)  # its TLS settings, for _context_for
        hint = "check that the server is up and that registries.d names the right URL"
        try:
            resp = self._send(url, what, first=True)
        except RegistryUnreachableError as e:  # it is no registry: say what it is
            raise RegistryError(f"{what}: {netloc} cannot be reached: {e.reason}", hint=hint) from e
        with resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise RegistryError(f"{what}: {netloc} answered HTTP {resp.status_code}", hint=hint)
            try:
                return _read_body(resp, limit)
            except _TooLarge as e:
                raise RegistryError(
                    f"{what}: {netloc} sent more than {limit} bytes", hint=hint
                ) from e
            except rex.ContentDecodingError as e:
                raise _encoding_error(what, resp, e) from e
            except _TRANSIENT as e:
                raise RegistryError(
                    f"{what}: the download broke off: {_reason(e)}",
                    hint="check that the server is up and reachable, then try again",
                ) from e


def _body_start(resp: requests.Response, asked: int) -> int:
    if resp.status_code != 206:
        return 0
    m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else asked


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as sent. A blob is asked for with Accept-Encoding: identity, so a
    Content-Encoding label (some object stores put one on .tar.gz files) is not acted on,
    as Go's client does not: the bytes must match the blob's digest as they are."""
    try:
        yield from resp.raw.stream(CHUNK, decode_content=False)
    except (urllib3_errors.HTTPError, OSError) as e:
        raise Interrupted(_reason(e)) from e

"""Tests for syscontainers.trust.lookaside and RegistryClient.get_optional: registries.d parsing,
scope precedence, the signature URL layout, and reading signatures from file:// and, through
the registry client (retries, certs.d TLS), from a real HTTP(S) server on loopback."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import itertools
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from syscontainers.errors import PolicyError, RegistryError, TlsError
from syscontainers.reference import parse
from syscontainers.registry import RegistryOptions, make_client
from syscontainers.registry.http import RegistryClient
from syscontainers.registry.stream import RetryPolicy
from syscontainers.settings import Settings
from syscontainers.trust.lookaside import (
    BUILTIN_LOOKASIDE,
    MAX_SIGNATURE_SIZE,
    MAX_SIGNATURES,
    RegistriesD,
    fetch_url,
    load_registries_d,
    lookaside_for,
    parse_registries_d,
    read_signatures,
    signature_urls,
    uses_sigstore_attachments,
)

HEX = "cdf822ec1601ef0e2c926535cb5c063e29e506f5d99e5f33562dc5ef8ac0b26d"
DIGEST = f"sha256:{HEX}"
REPO = Path(__file__).resolve().parents[2]


def parse_one(text: str) -> RegistriesD:
    return parse_registries_d([("a.yaml", text.encode())])


# ---- parsing -------------------------------------------------------------------


def test_parse_single_file() -> None:
    config = parse_one(
        """
default-docker:
  lookaside: https://default.example.com/sigs
docker:
  registry.example.com:
    lookaside: https://lookaside.example.com
  registry.example.com/mydepartment:
    lookaside: https://dept.example.com
    lookaside-staging: file:///mnt/staging
    use-sigstore-attachments: true
"""
    )
    assert config == RegistriesD(
        "https://default.example.com/sigs",
        (
            ("registry.example.com", "https://lookaside.example.com"),
            ("registry.example.com/mydepartment", "https://dept.example.com"),
        ),
        "a.yaml",
        None,
        (("registry.example.com/mydepartment", True),),
    )


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("registry.example.com/mydepartment/app:1", True),  # the namespace sets it
        ("registry.example.com/mydepartment/off/app:1", False),  # a deeper scope unsets it
        ("registry.example.com/mydepartment/quiet/app:1", True),  # no flag there: next scope
        ("registry.example.com/other/app:1", False),  # the host's section has no flag: default
        ("elsewhere.example.org/app:1", False),
    ],
)
def test_uses_sigstore_attachments_takes_the_most_specific_flag(ref: str, expected: bool) -> None:
    config = parse_one(
        """
default-docker:
  use-sigstore-attachments: false
docker:
  registry.example.com:
    lookaside: https://lookaside.example.com
  registry.example.com/mydepartment:
    use-sigstore-attachments: yes
  registry.example.com/mydepartment/off:
    use-sigstore-attachments: false
  registry.example.com/mydepartment/quiet:
    lookaside: https://quiet.example.com
"""
    )
    assert uses_sigstore_attachments(config, parse(ref)) is expected


def test_default_docker_can_turn_attachments_on() -> None:
    config = parse_one("default-docker:\n  use-sigstore-attachments: true\n")
    assert uses_sigstore_attachments(config, parse("quay.io/x/y:1"))
    assert not uses_sigstore_attachments(parse_one("docker: {}\n"), parse("quay.io/x/y:1"))


def test_parse_merges_files_in_order() -> None:
    config = parse_registries_d(
        [
            ("/d/a.yaml", b"docker:\n  quay.io:\n    lookaside: https://q\n"),
            ("/d/b.yaml", b"default-docker:\n  lookaside: file:///var/sigs\n"),
            ("/d/c.yaml", b"docker:\n  ghcr.io/x:\n    lookaside: https://g\n"),
        ]
    )
    assert config.default == "file:///var/sigs"
    assert config.scopes == (("quay.io", "https://q"), ("ghcr.io/x", "https://g"))
    assert config.origin == "/d/a.yaml, /d/b.yaml, /d/c.yaml"


@pytest.mark.parametrize(
    ("section", "url"),
    [
        ("sigstore: https://legacy", "https://legacy"),
        ("lookaside: https://new\n    sigstore: https://legacy", "https://new"),
        ("sigstore-staging: file:///w\n    sigstore: https://legacy", "https://legacy"),
        ("lookaside-staging: file:///w", ""),  # write-side only: nothing to read from
        ("sigstore-staging: file:///w", ""),
        ("use-sigstore-attachments: yes", ""),
        ("lookaside: ~", ""),
        ("lookaside: 8080", "8080"),  # yaml.v3 gives a string field the scalar's text
        ("lookaside: https://x\n    mystery-key: [1, 2]", "https://x"),  # unknown: ignored
    ],
)
def test_parse_section_keys(section: str, url: str) -> None:
    config = parse_one(f"docker:\n  quay.io:\n    {section}\n")
    assert config.scopes == (("quay.io", url),)


def test_parse_ignores_unknown_top_level_keys_and_empty_files() -> None:
    config = parse_registries_d(
        [("a.yaml", b"registries:\n  - x\nmystery: 1\n"), ("b.yaml", b""), ("c.yaml", b"~\n")]
    )
    assert config == RegistriesD(origin="a.yaml, b.yaml, c.yaml")


def test_parse_reads_only_the_first_document() -> None:
    config = parse_one("docker:\n  a.io:\n    lookaside: https://a\n---\n: : [\n")
    assert config.scopes == (("a.io", "https://a"),)


def test_duplicate_scope_across_files_is_refused() -> None:
    files = [
        ("/d/10-a.yaml", b"docker:\n  quay.io/ns:\n    lookaside: https://a\n"),
        ("/d/20-b.yaml", b"docker:\n  quay.io/ns:\n    lookaside-staging: file:///b\n"),
    ]
    with pytest.raises(PolicyError, match=r"'quay.io/ns'.*/d/10-a\.yaml.*/d/20-b\.yaml") as e:
        parse_registries_d(files)
    assert e.value.hint


def test_duplicate_default_docker_across_files_is_refused() -> None:
    section = b"default-docker:\n  lookaside: https://a\n"
    with pytest.raises(PolicyError, match=r"default-docker.*x\.yaml.*y\.yaml"):
        parse_registries_d([("x.yaml", section), ("y.yaml", section)])


def test_empty_sections_still_count_as_defined() -> None:
    # A null scope is an (empty) section in containers/image; a null default-docker is none.
    null_scope = [("x.yaml", b"docker:\n  quay.io:\n"), ("y.yaml", b"docker: {quay.io: ~}")]
    with pytest.raises(PolicyError, match="'quay.io'"):
        parse_registries_d(null_scope)
    with pytest.raises(PolicyError, match="default-docker"):
        parse_registries_d([("x.yaml", b"default-docker: {}"), ("y.yaml", b"default-docker: {}")])
    nulls = parse_registries_d([("x.yaml", b"default-docker:\n"), ("y.yaml", b"default-docker: ~")])
    assert nulls.default == ""


def test_duplicate_key_in_one_file_is_refused() -> None:
    text = "docker:\n  quay.io:\n    lookaside: https://a\n  quay.io:\n    lookaside: https://b\n"
    with pytest.raises(PolicyError, match=r"a\.yaml.*duplicate key 'quay.io'.*line 4"):
        parse_one(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("docker:\n  quay.io: [\n", r"a\.yaml is not valid YAML: .* at line \d+"),
        ("\tdocker: 1\n", r"a\.yaml is not valid YAML"),
        ("- docker\n", r"a\.yaml is a YAML sequence, not a mapping"),
        ("just text\n", r"a\.yaml is a YAML scalar"),
        ("docker: [quay.io]\n", r"a\.yaml: key 'docker' is a sequence"),
        ("docker:\n  quay.io: https://x\n", r"a\.yaml: docker scope 'quay.io' is a scalar"),
        ("default-docker: https://x\n", r"a\.yaml: 'default-docker' is a scalar"),
        (
            "docker:\n  q.io:\n    lookaside: {a: b}\n",
            r"a\.yaml: docker scope 'q.io' key 'lookaside' is a",
        ),
        ("docker:\n  q.io:\n    sigstore-staging: [x]\n", r"key 'sigstore-staging' is a sequence"),
        ("docker:\n  q.io:\n    use-sigstore-attachments: maybe\n", r"'maybe', not a boolean"),
        ("docker:\n  q.io:\n    use-sigstore-attachments: 1\n", r"'1', not a boolean"),
    ],
)
def test_malformed_files_are_refused_naming_the_file(text: str, match: str) -> None:
    with pytest.raises(PolicyError, match=match) as e:
        parse_one(text)
    assert e.value.hint


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"b\.yaml is not valid YAML"):
        parse_registries_d([("b.yaml", b"docker:\n  \xff\xfe\xfa: 1\n")])


def test_load_directory(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("docker:\n  b.io:\n    lookaside: https://b\n")
    (tmp_path / "a.yaml").write_text("docker:\n  a.io:\n    lookaside: https://a\n")
    (tmp_path / "c.yml").write_text("docker:\n  c.io:\n    lookaside: https://c\n")  # not .yaml
    (tmp_path / "README").write_text("[not yaml")
    config = load_registries_d(tmp_path)
    assert config.scopes == (("a.io", "https://a"), ("b.io", "https://b"))
    assert config.origin == str(tmp_path)


def test_load_names_the_file_in_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("docker: [\n")
    with pytest.raises(PolicyError, match=str(tmp_path / "bad.yaml")):
        load_registries_d(tmp_path)


def test_load_missing_directory_is_no_configuration(tmp_path: Path) -> None:
    assert load_registries_d(tmp_path / "nope") == RegistriesD(origin=str(tmp_path / "nope"))


def test_load_refuses_a_file_for_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(PolicyError, match="cannot list the registries.d directory"):
        load_registries_d(tmp_path / "f")


def test_importing_the_module_does_not_load_yaml() -> None:
    code = "import sys, syscontainers.trust.lookaside as m; print('yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# ---- scope precedence ----------------------------------------------------------

SCOPES = f"""
default-docker:
  lookaside: https://default
docker:
  docker.io:
    lookaside: https://hub
  docker.io/library:
    lookaside: https://library
  docker.io/library/busybox:1.36:
    lookaside: https://busybox-1.36
  registry.example.com:5000:
    lookaside: https://port
  registry.example.com:
    lookaside: https://no-port
  registry.example.com:5000/ns/deep:
    lookaside: https://deep
  registry.example.com:5000/ns/deep/sub/repo@{DIGEST}:
    lookaside: https://by-digest
  "*.example.org":
    lookaside: https://wildcard
  "*.b.example.org":
    lookaside: https://narrow-wildcard
  quay.io/staging:
    lookaside-staging: file:///staging
  quay.io:
    sigstore: https://quay
"""


@pytest.mark.parametrize(
    ("ref", "url"),
    [
        ("docker.io/busybox", "https://library"),  # docker.io/library/busybox:latest
        ("docker.io/library/busybox:1.36", "https://busybox-1.36"),
        ("index.docker.io/library/busybox:1.36", "https://busybox-1.36"),  # normalized
        ("docker.io/library/busybox:1.37", "https://library"),  # a tag scope is exact only
        ("docker.io/library/busybox:1.36@" + DIGEST, "https://busybox-1.36"),
        ("docker.io/someone/app:1", "https://hub"),
        ("registry.example.com:5000/ns/repo", "https://port"),  # not the port-less host
        ("registry.example.com/ns/repo", "https://no-port"),
        ("registry.example.com:5000/ns/deep/sub/repo:v1", "https://deep"),
        ("registry.example.com:5000/ns/deep", "https://deep"),
        ("registry.example.com:5000/ns/deeper/repo", "https://port"),  # components, not text
        ("registry.example.com:5000/ns/deep/sub/repo@" + DIGEST, "https://by-digest"),
        ("a.b.example.org/x", "https://narrow-wildcard"),
        ("c.example.org:8443/x", "https://wildcard"),  # wildcards drop the port
        ("example.org/x", "https://default"),  # *.example.org is for subdomains only
        ("quay.io/staging/x", "https://quay"),  # a section without lookaside passes on
        ("ghcr.io/x/y", "https://default"),
    ],
)
def test_lookaside_for_precedence(ref: str, url: str) -> None:
    config = parse_one(SCOPES)
    assert lookaside_for(config, parse(ref)) == url


def test_lookaside_for_without_configuration() -> None:
    ref = parse("quay.io/x/y:1")
    assert lookaside_for(RegistriesD(), ref) == ""
    assert lookaside_for(RegistriesD(), ref, BUILTIN_LOOKASIDE) == BUILTIN_LOOKASIDE
    staged = parse_one("default-docker:\n  lookaside-staging: file:///w\n")
    assert lookaside_for(staged, ref, "file:///fallback") == "file:///fallback"


# ---- URL layout ----------------------------------------------------------------
# registries_d.go: lookasideStorageBaseURL appends "/" + reference.Path(ref) to the base URL's
# path; reference.Path is the repository path WITHOUT the host ("library/busybox" for the
# normalized docker.io/library/busybox, "ns/repo" for host:port/ns/repo), never a tag or digest.
# lookasideStorageURL then appends "@" + algorithm + "=" + hex + "/signature-" + (index + 1).
# It edits the parsed URL's path only, so a trailing "/" in the base gives "//" and a query
# string stays at the end. Checked against skopeo 1.x: `skopeo copy --sign-by` with
# lookaside-staging: file:///tmp/lk/sigs/ wrote sigs/ns/deep/repo@sha256=HEX/signature-1 for
# docker://127.0.0.1:PORT/ns/deep/repo:v1.


@pytest.mark.parametrize(
    ("base", "ref", "first"),
    [
        (
            "https://sigs.example.com/lookaside",
            "docker.io/busybox:latest",
            f"https://sigs.example.com/lookaside/library/busybox@sha256={HEX}/signature-1",
        ),
        (
            "file:///var/lib/containers/sigstore",
            "registry.example.com:5000/ns/repo:v1",
            f"file:///var/lib/containers/sigstore/ns/repo@sha256={HEX}/signature-1",
        ),
        (
            "file:///tmp/lk/sigs/",
            f"127.0.0.1:5000/ns/deep/repo@{DIGEST}",
            f"file:///tmp/lk/sigs//ns/deep/repo@sha256={HEX}/signature-1",
        ),
        (
            "http://127.0.0.1:8080",
            "quay.io/a/b/c:1",
            f"http://127.0.0.1:8080/a/b/c@sha256={HEX}/signature-1",
        ),
        (
            "https://h/s?token=1",
            "quay.io/a:1",
            f"https://h/s/a@sha256={HEX}/signature-1?token=1",
        ),
    ],
)
def test_signature_url_layout(base: str, ref: str, first: str) -> None:
    urls = list(itertools.islice(signature_urls(base, parse(ref), DIGEST), 3))
    assert urls == [first.replace("signature-1", f"signature-{n}") for n in (1, 2, 3)]


def test_signature_urls_do_not_end() -> None:
    urls = signature_urls("https://h", parse("quay.io/a:1"), DIGEST)
    last = next(itertools.islice(urls, 999, None))
    assert last.endswith("/signature-1000")


@pytest.mark.parametrize(
    "digest", ["sha256:" + HEX[:-1], "sha256:" + HEX.upper(), "md5:abc", HEX, "sha512:" + HEX]
)
def test_signature_urls_refuse_bad_digests(digest: str) -> None:
    with pytest.raises(PolicyError, match="not a valid digest"):
        signature_urls("https://h", parse("quay.io/a:1"), digest)


def test_signature_urls_need_a_base() -> None:
    with pytest.raises(PolicyError, match="no lookaside storage"):
        signature_urls("", parse("quay.io/a:1"), DIGEST)


# ---- read_signatures -----------------------------------------------------------

CONFIG = RegistriesD(scopes=(("quay.io", "https://sigs"),))
QUAY = parse("quay.io/ns/app:1")


def url(n: int) -> str:
    return f"https://sigs/ns/app@sha256={HEX}/signature-{n}"


class Store:
    """A lookaside store in a dict; it records what was asked for."""

    def __init__(self, sigs: dict[int, bytes]) -> None:
        self.by_url = {url(n): blob for n, blob in sigs.items()}
        self.asked: list[str] = []

    def fetch(self, address: str) -> bytes | None:
        self.asked.append(address)
        return self.by_url.get(address)


def test_read_signatures_stops_at_first_missing() -> None:
    store = Store({1: b"one", 2: b"two", 3: b"three", 5: b"five"})
    assert read_signatures(CONFIG, QUAY, DIGEST, store.fetch) == [b"one", b"two", b"three"]
    assert store.asked == [url(1), url(2), url(3), url(4)]


def test_read_signatures_none() -> None:
    store = Store({2: b"two"})
    assert read_signatures(CONFIG, QUAY, DIGEST, store.fetch) == []
    assert store.asked == [url(1)]


def test_read_signatures_limit() -> None:
    # As containers/image: LIMIT URLs at most; if all of them hold a signature, give up.
    store = Store({n: b"s" for n in range(1, 5)})
    assert read_signatures(CONFIG, QUAY, DIGEST, store.fetch, limit=5) == [b"s"] * 4
    store = Store({n: b"s" for n in range(1, 6)})
    with pytest.raises(PolicyError, match="5 or more signatures"):
        read_signatures(CONFIG, QUAY, DIGEST, store.fetch, limit=5)
    assert store.asked == [url(n) for n in range(1, 6)]
    endless = Store({n: b"s" for n in range(1, MAX_SIGNATURES + 10)})
    with pytest.raises(PolicyError):
        read_signatures(CONFIG, QUAY, DIGEST, endless.fetch)
    assert len(endless.asked) == MAX_SIGNATURES == 128


def test_read_signatures_without_storage() -> None:
    store = Store({1: b"one"})
    assert read_signatures(RegistriesD(), QUAY, DIGEST, store.fetch) == []
    assert store.asked == []
    assert read_signatures(RegistriesD(), QUAY, DIGEST, store.fetch, fallback="https://sigs") == [
        b"one"
    ]


# ---- fetch_url: file:// --------------------------------------------------------


def no_http(address: str, limit: int) -> bytes | None:
    raise AssertionError(f"HTTP used for {address}")


def test_fetch_file_present_missing_and_directory(tmp_path: Path) -> None:
    (tmp_path / "sig").write_bytes(b"\x00signature")
    (tmp_path / "dir").mkdir()
    assert fetch_url(f"file://{tmp_path}/sig", no_http) == b"\x00signature"
    assert fetch_url(f"file://{tmp_path}/missing", no_http) is None
    assert fetch_url(f"file://{tmp_path}/nodir/signature-1", no_http) is None
    with pytest.raises(PolicyError, match=f"cannot read the signature file://{tmp_path}/dir"):
        fetch_url(f"file://{tmp_path}/dir", no_http)


def test_fetch_file_decodes_the_path(tmp_path: Path) -> None:
    (tmp_path / "a b").write_bytes(b"sig")
    assert fetch_url(f"file://{tmp_path}/a%20b", no_http) == b"sig"


def test_fetch_file_size_cap(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 11)
    (tmp_path / "fits").write_bytes(b"x" * 10)
    assert fetch_url(f"file://{tmp_path}/fits", no_http, limit=10) == b"x" * 10
    with pytest.raises(PolicyError, match="larger than 10 bytes"):
        fetch_url(f"file://{tmp_path}/big", no_http, limit=10)


def test_fetch_file_default_cap_is_4_mib(tmp_path: Path) -> None:
    (tmp_path / "s").write_bytes(b"x" * ((4 << 20) + 1))
    with pytest.raises(PolicyError, match="larger than 4194304 bytes"):
        fetch_url(f"file://{tmp_path}/s", no_http)


@pytest.mark.parametrize("address", ["ftp://h/sig", "/var/lib/sigs/x", "docker://h/x", "x"])
def test_fetch_refuses_other_schemes(address: str) -> None:
    with pytest.raises(PolicyError, match="unsupported scheme") as e:
        fetch_url(address, no_http)
    assert e.value.hint


def test_read_signatures_from_a_file_store(tmp_path: Path) -> None:
    sigdir = tmp_path / "ns" / f"app@sha256={HEX}"
    sigdir.mkdir(parents=True)
    (sigdir / "signature-1").write_bytes(b"first")
    (sigdir / "signature-2").write_bytes(b"second")
    config = parse_one(f"docker:\n  quay.io/ns:\n    lookaside: file://{tmp_path}\n")
    found = read_signatures(config, QUAY, DIGEST, lambda u: fetch_url(u, no_http))
    assert found == [b"first", b"second"]


# ---- HTTP, through the registry client to a real server on loopback ----------------------


class Server:
    """An HTTP(S) server on 127.0.0.1 answering from ROUTES (path -> (status, body)), else 404;
    a path in FLAKY first answers 503 that many times."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.flaky: dict[str, int] = {}
        self.asked: list[str] = []
        routes, flaky, asked = self.routes, self.flaky, self.asked

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                asked.append(self.path)
                status, body = routes.get(self.path, (404, b"not found"))
                if flaky.get(self.path):
                    flaky[self.path] -= 1
                    status, body = 503, b"busy"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        port = self.httpd.server_address[1]
        self.netloc = f"127.0.0.1:{port}"
        self.base = f"{'https' if tls else 'http'}://{self.netloc}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate for IP 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01)


def client(certs_d: Path | None = None, options: RegistryOptions | None = None) -> RegistryClient:
    """The client a command makes: certs.d from CERTS_D, retries FAST, no auth files."""
    settings = Settings(certs_d=certs_d or Path("/nonexistent"))
    return make_client(settings, options or RegistryOptions(retry=FAST), frozenset(), {})


def get(url: str, limit: int = MAX_SIGNATURE_SIZE) -> bytes | None:
    c = client()
    try:
        return c.get_optional(url, f"signature {url}", limit)
    finally:
        c.close()


def http_get(url: str, limit: int) -> bytes | None:
    return get(url, limit)


def sig_path(n: int, prefix: str = "/lookaside") -> str:
    return f"{prefix}/ns/app@sha256={HEX}/signature-{n}"


def test_get_optional_statuses(server: Server) -> None:
    server.routes["/ok"] = (200, b"body")
    server.routes["/empty"] = (200, b"")
    server.routes["/broken"] = (500, b"oops")
    server.routes["/gone"] = (410, b"")
    assert get(server.base + "/ok") == b"body"
    assert get(server.base + "/empty") == b""
    assert get(server.base + "/missing") is None
    for path in ("/broken", "/gone"):
        with pytest.raises(RegistryError, match=f"{server.base}{path}: .* answered HTTP") as e:
            get(server.base + path)
        assert e.value.hint
    assert server.asked.count("/broken") == FAST.attempts  # a 5xx is retried, a 410 is not
    assert server.asked.count("/gone") == 1


def test_get_optional_retries_a_transient_503(server: Server) -> None:
    server.routes["/sig"] = (200, b"signature")
    server.flaky["/sig"] = FAST.attempts - 1
    assert get(server.base + "/sig") == b"signature"
    assert server.asked == ["/sig"] * FAST.attempts


def test_get_optional_size_limit(server: Server) -> None:
    server.routes["/big"] = (200, b"x" * 1001)
    assert get(server.base + "/big", limit=1001) == b"x" * 1001
    with pytest.raises(RegistryError, match="more than 1000 bytes"):
        get(server.base + "/big", limit=1000)


def test_get_optional_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        address = f"http://127.0.0.1:{port}/sig"
        with pytest.raises(RegistryError, match=f"127.0.0.1:{port} cannot be reached") as e:
            get(address)
    assert e.value.message.startswith(f"signature {address}: ")  # not "registry …"
    assert e.value.hint and "registries.d" in e.value.hint


def test_get_optional_trusts_the_lookaside_host_ca_from_certs_d(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls = Server(context)
    try:
        tls.routes["/sig"] = (200, b"signature")
        certs_d = tmp_path / "certs.d"
        with pytest.raises(TlsError, match="certificate") as e:
            client(certs_d).get_optional(tls.base + "/sig", "signature", 100)
        assert e.value.hint and f"certs.d/{tls.netloc}/ca.crt" in e.value.hint
        (certs_d / tls.netloc).mkdir(parents=True)
        (certs_d / tls.netloc / "ca.crt").write_bytes(cert.read_bytes())
        assert client(certs_d).get_optional(tls.base + "/sig", "signature", 100) == b"signature"
        (tmp_path / "flat").mkdir()
        (tmp_path / "flat" / "lookaside.crt").write_bytes(cert.read_bytes())
        flat = RegistryOptions(cert_dir=tmp_path / "flat", retry=FAST)  # --cert-dir
        assert client(options=flat).get_optional(tls.base + "/sig", "s", 100) == b"signature"
    finally:
        tls.close()


def test_read_signatures_over_http(server: Server) -> None:
    server.routes[sig_path(1)] = (200, b"first")
    server.routes[sig_path(2)] = (200, b"second")
    config = parse_one(f"docker:\n  quay.io/ns/app:\n    lookaside: {server.base}/lookaside\n")
    found = read_signatures(config, QUAY, DIGEST, lambda u: fetch_url(u, http_get))
    assert found == [b"first", b"second"]
    assert server.asked == [sig_path(1), sig_path(2), sig_path(3)]  # 3: the 404 that ends it


def test_read_signatures_over_http_server_error(server: Server) -> None:
    server.routes[sig_path(1)] = (200, b"first")
    server.routes[sig_path(2)] = (500, b"oops")
    config = RegistriesD(default=f"{server.base}/lookaside")
    with pytest.raises(RegistryError, match=f"{sig_path(2)}: .* answered HTTP 500"):
        read_signatures(config, QUAY, DIGEST, lambda u: fetch_url(u, http_get))


def test_fetch_url_caps_what_http_returns() -> None:
    with pytest.raises(PolicyError, match="larger than 3 bytes"):
        fetch_url("https://h/sig", lambda u, limit: b"four", limit=3)

"""The exception hierarchy: one root error with a message and an optional hint."""

from __future__ import annotations


class SysContainersError(Exception):
    """Root of every error the library raises on purpose.

    ``message`` says what failed, on which object and why; ``hint`` says what
    the user can do about it. The CLI prints both and maps ``exit_code``.
    """

    exit_code = 1
    default_hint: str | None = None  # the hint of an error raised without its own

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class UsageError(SysContainersError):
    """Invalid input from the user: a bad argument, value or combination."""

    exit_code = 2


class ReferenceParseError(UsageError):
    """An image reference or transport string that cannot be parsed."""


class ManifestError(SysContainersError):
    """A manifest, index or image config that is malformed or unsupported."""

    default_hint = (
        "the image is damaged or not an OCI or Docker image; check its name and source, "
        "or tell its author"
    )


class SourceError(SysContainersError):
    """An image source (layout, archive, registry) that cannot be read."""


class ImageNotFoundError(SysContainersError):
    """The named image or tag is not in the source or the store."""


class DigestMismatchError(SysContainersError):
    """Bytes whose sha256 is not the digest that names them."""


class LayerError(SysContainersError):
    """A layer tarball that is corrupt, truncated or hostile."""


class StoreError(SysContainersError):
    """The content store cannot do what was asked."""


class StoreLockedError(StoreError):
    """Another command holds the store lock."""


class StoreCorruptError(StoreError):
    """Objects or metadata in the store do not match their digests."""


class ImageInUseError(StoreError):
    """An image that a mount or a container still uses."""


class FilesystemError(SysContainersError):
    """The host's filesystem refused: out of space or inodes, over quota, read-only, no
    permission, a name too long. A condition of the host, not a bug."""


class CheckoutError(SysContainersError):
    """A checkout or mount that cannot be made."""


class RegistryError(SourceError):
    """A registry answered with an error or could not be reached."""


class RegistryUnreachableError(RegistryError):
    """A registry whose name does not resolve, or whose port refuses connections: no retry
    would help. With IMAGE, the image that was not in the store either."""

    def __init__(self, registry: str, reason: str, image: str | None = None) -> None:
        self.registry, self.reason = registry, reason
        missing = f"image {image} is not in the store and " if image else ""
        super().__init__(
            f"{missing}registry {registry} cannot be reached: {reason}",
            hint=(
                "check the image name ('syscontainers images list' shows the stored ones), "
                if image
                else "check the registry's name and port, "
            )
            + "that the registry is running, and that its name resolves (DNS, network)",
        )


class AuthError(RegistryError):
    """A registry refused our credentials or asked for some we lack."""


class TlsError(RegistryError):
    """A TLS handshake or certificate check with a registry failed."""


class RegistryNotFoundError(ImageNotFoundError, RegistryError):
    """A registry answered HTTP 404: the repository, tag, digest or blob is not there."""


class TemplateError(SysContainersError):
    """A template in an image that cannot be rendered."""


class SystemdError(SysContainersError):
    """systemd refused a request or could not be reached over D-Bus."""


class SystemdCallError(SystemdError):
    """A D-Bus error reply from systemd, keeping the D-Bus error name (say, NoSuchUnit) so
    that a caller can tell the replies it expects from real failures."""

    def __init__(self, message: str, hint: str | None, error_name: str) -> None:
        super().__init__(message, hint)
        self.error_name = error_name


class DBusTimeoutError(SystemdError):
    """A D-Bus peer (the bus, systemd) did not answer in time; the caller words the message."""


class CommandError(SysContainersError):
    """An external command that failed."""


class ContainerNotFoundError(SysContainersError):
    """No installed container has that name."""


class ContainerExistsError(SysContainersError):
    """A container with that name is already installed."""


class PolicyError(SysContainersError):
    """The trust policy rejected an image, or a signature did not verify."""

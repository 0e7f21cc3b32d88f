"""syscontainers: install OCI images as systemd system containers, with no daemon."""

__version__ = "0.1.0"

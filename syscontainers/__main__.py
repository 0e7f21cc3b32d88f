"""Entry point for ``python -m syscontainers``."""

from syscontainers.cli import run

run()

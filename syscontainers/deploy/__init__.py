"""Container deployments on disk: the slot layout, info.json, the symlink flip and host files.

``layout`` draws the directory layout and owns the per-deployment record;
``hostfiles`` installs an image's hostfs/ files with a checksum ledger and
refuses destinations that escape through '..' or symlinks. The lifecycle
operations (syscontainers.operations.install, update, containers) drive them.
"""

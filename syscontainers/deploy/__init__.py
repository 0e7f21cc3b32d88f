"""Container deployments on disk: the slot layout, info.json, the symlink flip and host files.

``layout`` draws the directory layout and owns the per-deployment record;
``hostfiles`` stages an image's hostfs/ files with a checksum ledger and does
the host-side file work, refusing destinations that escape through '..' or
symlinks; ``hostdb`` is the database of which containers own each host path,
and ``hostplan`` decides what moving a container's host files does. The
lifecycle operations (syscontainers.operations.install, update, containers,
through operations.hostsync) drive them.
"""

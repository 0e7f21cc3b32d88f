"""Operations: each verb as one library call that takes the store lock; cli/ calls these.

Images: ``pull`` resolves a name, checks the trust policy and imports only the
missing layers; ``images`` (list, tag, delete, prune, verify), ``inspect`` and
``checkout`` (checkout, mount, umount) work on what the store holds.

A container's lifecycle; every step acts through the seams of ``host.Host``::

    install IMAGE          update NAME            rollback NAME
         │                      │                      │
         ▼                      ▼                      ▼
    activation.reconcile: finish what a crash left half done
         │                      │                      │
         ▼                      ▼                      │
    slot: acquire the image (pull it if missing),      │
          render it, stage NAME.0 or the other slot    │
         │                      │                      │
         ▼                      ▼                      ▼
    settle.switch: record the intent in info.json, then activation.activate:
          host files (hostsync), unit and tmpfiles, the NAME -> NAME.N flip
         │
         ▼
    settle.settle: reload, tmpfiles, enable; start and watch the health window;
          a new deployment that fails it switches back (update)
         │
         ▼
    installed: containers (list, run, uninstall), logs, hostquery (hostfiles verbs)

``apply`` converges the host to a manifest (``provision``) through these same
verbs; ``autoupdate`` runs ``update`` for the containers that opted in.
Importing this package loads nothing: each verb imports only its own module.
"""

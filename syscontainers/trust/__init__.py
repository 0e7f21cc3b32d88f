"""Trust: whether an image may be written to the store, by containers-policy.json(5).

``model`` holds the policy's values, ``policy`` parses a policy file and finds the
requirements for an image's scope, ``gpg`` verifies OpenPGP signed messages with the
real gpg, ``sigstore`` verifies cosign signatures with public keys, ``payload`` reads
the JSON both signature payloads share, ``simple_signing`` reads the "atomic container
signature" payload and matches its identity, ``lookaside`` finds an image's
signatures through registries.d, ``requirements`` holds each requirement type's check of an
image, and ``check`` puts them together as the pull pipeline's policy check.
"""

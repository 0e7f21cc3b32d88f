"""Host provisioning: the host manifest (``manifest``) and the plan that converges a host to it."""

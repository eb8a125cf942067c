"""flows."""

from flows import heartbeats as _heartbeats  # noqa: F401  (sync runs end without a 1 s wait)

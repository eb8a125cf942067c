"""Fixtures of the operations tests (reaper, health): committed writes, emptied afterwards."""

from tests.sync.conftest import committed  # noqa: F401

"""Queue tests reuse the channel-sync factories (committed data, hotels with channels)."""

from tests.sync.conftest import committed  # noqa: F401

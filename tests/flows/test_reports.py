"""The daily channel-report flow publishes the report as a table artifact."""

from __future__ import annotations

import asyncio

import pytest

from channels.base import ChannelName
from flows.reports import channel_report
from flows.runner import run_flow
from tasks.results import ReportOutcome
from tests.sync.conftest import committed, make_hotel  # noqa: F401

pytestmark = pytest.mark.usefixtures("prefect_server")


def _artifact(key: str) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> list[dict]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        import json

        return json.loads(found[0].data) if found else []

    return asyncio.run(read())


def test_channel_report_flow_publishes_a_table(committed):  # noqa: F811
    hotel = make_hotel(committed, days=2, channels=(ChannelName.AGODA, ChannelName.EXPEDIA))
    committed.commit()
    out = run_flow(channel_report, property_id=hotel.property_id)
    assert out.ok, out.error
    assert isinstance(out.value, ReportOutcome)
    assert [r.channel_name for r in out.value.channels] == ["agoda", "expedia"]
    table = _artifact("channel-report")
    assert {r["channel_id"] for r in table} == set(hotel.channels.values())

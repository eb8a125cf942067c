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


def test_the_result_survives_a_state_read_back_from_the_server(committed):  # noqa: F811
    """A flow's final state can come back from the server without its data (Prefect's
    client retries a timed-out state proposal; the server then rejects the repeat and
    answers with its own copy). The result is persisted, so that copy still holds it."""
    from prefect.client.orchestration import get_client

    from flows.runner import outcome_of

    hotel = make_hotel(committed, days=2, channels=(ChannelName.AGODA,))
    committed.commit()
    out = run_flow(channel_report, property_id=hotel.property_id)
    assert out.ok, out.error

    async def server_state():
        async with get_client() as client:
            return (await client.read_flow_run(out.flow_run_id)).state

    again = outcome_of(asyncio.run(server_state()))
    assert again.ok and again.value_as(ReportOutcome) == out.value


def test_every_flow_persists_its_result():
    """The guarantee above, for every flow innsync runs."""
    from prefect import Flow

    import flows.backup
    import flows.channel_sync
    import flows.maintenance
    import flows.queue
    import flows.reports
    import flows.scheduled

    found = [obj for module in (flows.backup, flows.channel_sync, flows.maintenance,
                                flows.queue, flows.reports, flows.scheduled)
             for obj in vars(module).values()
             if isinstance(obj, Flow) and obj.__module__ == module.__name__]
    assert len(found) >= 17
    assert [f.name for f in found if f.persist_result is not True] == []

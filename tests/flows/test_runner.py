from prefect import flow, task

from flows.runner import run_flow


@task(retries=1, retry_delay_seconds=0)
def double(x: int) -> int:
    return 2 * x

# Persisted results, as every production flow has (seen once in CI without: the returned
# Completed state carried no data, MissingResult; a persisted result can be read back).
@flow(persist_result=True)
def ok_flow(x: int) -> int:
    return double(x)

@flow
def bad_flow() -> None:
    raise ValueError("boom")

def test_run_flow(prefect_server):
    out = run_flow(ok_flow, x=21)
    assert out.ok and out.value == 42 and out.flow_run_id is not None
    bad = run_flow(bad_flow)
    assert not bad.ok and isinstance(bad.error, ValueError) and bad.flow_run_id is not None


def test_run_flow_async_returns_the_result(prefect_server):
    import asyncio

    from flows.runner import run_flow_async

    out = asyncio.run(run_flow_async(ok_flow, x=5))
    assert out.ok and out.value == 10
    bad = asyncio.run(run_flow_async(bad_flow))
    assert not bad.ok and isinstance(bad.error, ValueError)

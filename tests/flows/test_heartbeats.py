"""Sync flow runs send heartbeats and do not wait for their heartbeat thread at the end."""

import threading
from contextlib import contextmanager

import prefect.flow_engine as engine
from prefect import flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

import flows  # noqa: F401  (installs the heartbeat context)
from flows import heartbeats
from flows.runner import run_flow


def test_a_sync_flow_run_heartbeats_without_joining_the_thread(prefect_server, monkeypatch):
    joins: list[bool] = []
    beat = threading.Event()
    original = heartbeats._original

    @contextmanager
    def spy(run_engine, join_on_exit=True):
        joins.append(join_on_exit)
        with original(run_engine, join_on_exit=join_on_exit):
            yield

    emit = engine.FlowRunEngine._emit_flow_run_heartbeat

    def emitted(self, *args, **kwargs):
        beat.set()
        return emit(self, *args, **kwargs)

    monkeypatch.setattr(heartbeats, "_original", spy)
    monkeypatch.setattr(engine.FlowRunEngine, "_emit_flow_run_heartbeat", emitted)

    @flow
    def waits_for_a_heartbeat() -> bool:
        return beat.wait(20)

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        out = run_flow(waits_for_a_heartbeat)
    assert out.ok and out.value is True  # the run sent its heartbeat while it ran
    assert joins == [False]  # Prefect's engine went through ours: no join at the end


def test_installed_on_the_engine():
    assert heartbeats.install() is True
    assert engine._send_heartbeats is heartbeats._send_heartbeats_without_join

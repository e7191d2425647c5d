"""The fences hold in a real runscheduler: the run checks again, with the scheduler's own settings."""

from __future__ import annotations

import pytest

from scheduler_app import services
from scheduler_app.models import Execution
from tests.fences.fakes import FakeWebServer
from tests.process.harness import PROCESS

pytestmark = PROCESS


@pytest.fixture
def web4():
    with FakeWebServer("127.0.0.1") as server:
        yield server


def _run_once(schedulers, web4, allow: str) -> Execution:
    job = services.job_create(
        name="call-home",
        task="tempora.http_request",
        kwargs={"url": f"{web4.base}/hook"},
        triggers=[{"kind": "once", "delay_seconds": 1}],
    )
    schedulers.start_leader(env={"TEMPORA_HTTP_ALLOW_HOSTS": allow})
    return schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status__in=["succeeded", "failed"]).first(),
        timeout=15,
        what="the run to finish",
    )


def test_a_run_the_schedulers_allow_list_does_not_name_fails_and_reaches_nothing(schedulers, settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]  # the web's allow-list named it when the job was saved
    row = _run_once(schedulers, web4, allow="")
    assert row.status == "failed"
    assert row.error.startswith("Refused: url: 127.0.0.1 is a loopback address"), row.error
    assert web4.connections == []


def test_a_run_the_schedulers_allow_list_names_reaches_the_server(schedulers, settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    row = _run_once(schedulers, web4, allow=web4.hostport)
    assert row.status == "succeeded", row.error
    assert row.result["status_code"] == 200
    assert [r["path"] for r in web4.requests] == ["/hook"]

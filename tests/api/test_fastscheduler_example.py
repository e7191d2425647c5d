"""FastScheduler's "Complete API Usage Example" (its README), run unchanged over real HTTP
against a live server: only the base URL differs, and `requests` sends a token."""

from __future__ import annotations

import io
import json
import sys
import types
import urllib.error
import urllib.request
from contextlib import redirect_stdout

import pytest

from scheduler_app import services
from scheduler_app.models import Execution, Job

# FastScheduler's README, "Complete API Usage Example", verbatim. The test changes only
# BASE_URL, and its `requests` sends an Authorization header.
EXAMPLE = """
import requests

BASE_URL = "http://localhost:8000/scheduler/api"

# 1. Register functions (must be done before creating jobs via API)
# This is done in your application code:
# scheduler.register_function(data_sync_task)
# scheduler.register_function(backup_task)

# 2. Create an interval job
response = requests.post(f"{BASE_URL}/jobs", json={
    "func_name": "data_sync_task",
    "func_module": "dev.test_app",
    "schedule_type": "interval",
    "schedule_config": {"interval": 30, "unit": "seconds"},
    "args": ["Real-time Sync"],
    "group": "data_sync",
    "max_retries": 3,
    "timeout": 60.0,
    "enabled": True
})
job_id = response.json()["job_id"]
print(f"Created job: {job_id}")

# 3. Get all jobs
response = requests.get(f"{BASE_URL}/jobs")
all_jobs = response.json()["jobs"]
print(f"Total jobs: {len(all_jobs)}")

# 4. Get jobs in a specific group
response = requests.get(f"{BASE_URL}/jobs?group=data_sync")
group_jobs = response.json()["jobs"]
print(f"Jobs in data_sync group: {len(group_jobs)}")

# 5. Get specific job details
response = requests.get(f"{BASE_URL}/jobs/{job_id}")
job = response.json()["job"]
print(f"Job status: {job['status']}")

# 6. Update job schedule
response = requests.put(f"{BASE_URL}/jobs/{job_id}", json={
    "schedule_config": {"interval": 60, "unit": "seconds"},
    "timeout": 120.0
})
print("Job updated")

# 7. Pause a job
response = requests.post(f"{BASE_URL}/jobs/{job_id}/pause")
print("Job paused")

# 8. Resume a job
response = requests.post(f"{BASE_URL}/jobs/{job_id}/resume")
print("Job resumed")

# 9. Trigger immediate execution
response = requests.post(f"{BASE_URL}/jobs/{job_id}/run")
print("Job triggered")

# 10. Get execution history
response = requests.get(f"{BASE_URL}/history?limit=10")
history = response.json()["history"]
print(f"Recent executions: {len(history)}")

# 11. Get scheduler status
response = requests.get(f"{BASE_URL}/status")
status = response.json()
print(f"Scheduler running: {status['running']}")
print(f"Total runs: {status['statistics']['total_runs']}")

# 12. Delete a job
response = requests.delete(f"{BASE_URL}/jobs/{job_id}")
print("Job deleted")

# 13. Group management - Get all groups
response = requests.get(f"{BASE_URL}/groups")
groups = response.json()["groups"]
print(f"Available groups: {groups}")

# 14. Group management - Pause all jobs in a group
response = requests.post(f"{BASE_URL}/groups/data_sync/pause")
result = response.json()
print(f"Paused {result['paused']} jobs in data_sync group")

# 15. Group management - Cancel all jobs in a group
response = requests.delete(f"{BASE_URL}/groups/data_sync")
result = response.json()
print(f"Cancelled {result['cancelled']} jobs in data_sync group")
"""


def requests_over_urllib(headers: dict[str, str], calls: list) -> types.ModuleType:
    """The part of `requests` the example uses, over urllib, sending `headers` with every call."""

    class Response:
        def __init__(self, status: int, body: bytes):
            self.status_code, self.content = status, body
            self.text = body.decode()

        def json(self):
            return json.loads(self.content)

    def request(method: str, url: str, json_body=None):
        data = json.dumps(json_body).encode() if json_body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                response = Response(answer.status, answer.read())
        except urllib.error.HTTPError as error:
            response = Response(error.code, error.read())
        calls.append((method, url, response.status_code))
        return response

    module = types.ModuleType("requests")
    module.get = lambda url, **kw: request("GET", url)
    module.post = lambda url, json=None, **kw: request("POST", url, json)
    module.put = lambda url, json=None, **kw: request("PUT", url, json)
    module.delete = lambda url, **kw: request("DELETE", url)
    return module


@pytest.mark.django_db(transaction=True)
def test_the_complete_api_usage_example_runs_unchanged(live_server, owner, fastscheduler_tasks, monkeypatch):
    _token, key = services.token_create(user=owner, name="fastscheduler example")
    calls: list = []
    monkeypatch.setitem(sys.modules, "requests", requests_over_urllib({"Authorization": f"Token {key}"}, calls))
    source = EXAMPLE.replace(
        'BASE_URL = "http://localhost:8000/scheduler/api"', f'BASE_URL = "{live_server.url}/scheduler/api"'
    )
    assert source != EXAMPLE
    printed = io.StringIO()
    with redirect_stdout(printed):
        exec(compile(source, "fastscheduler_example.py", "exec"), {"__name__": "__example__"})
    output = printed.getvalue().splitlines()

    assert len(calls) == 14 and all(status in (200, 201) for _m, _u, status in calls), calls
    job_id = output[0].removeprefix("Created job: ")
    assert job_id.startswith("job_")
    assert output[1:] == [
        "Total jobs: 1",
        "Jobs in data_sync group: 1",
        "Job status: scheduled",
        "Job updated",
        "Job paused",
        "Job resumed",
        "Job triggered",
        "Recent executions: 1",
        "Scheduler running: False",
        "Total runs: 0",
        "Job deleted",
        "Available groups: []",
        "Paused 0 jobs in data_sync group",
        "Cancelled 0 jobs in data_sync group",
    ]
    # What it did, in the database: the run it asked for is history that outlived the job.
    run = Execution.objects.get()
    assert (run.reason, run.job_name, run.status, run.requested_by) == ("manual", "data_sync_task", "cancelled", owner)
    assert not Job.objects.exists()

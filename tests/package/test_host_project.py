"""README's "Add Tempora to your project", followed to the letter by a fresh host.

The session's wheel goes into a new virtualenv with nothing but its own dependencies;
`django-admin startproject host` gets README's settings snippet appended and README's urls
snippet as its urls.py, plus what a real host already has and must keep: its own
templates/base.html and a REST_FRAMEWORK that disagrees with Tempora's API on every point.
Then the host is checked, migrated and served (runserver), signed in to through the console's
form, walked page by page and endpoint by endpoint, and a job made through the API is run by
the host's own `manage.py runscheduler`. Everything over real HTTP, no test client.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.package.conftest import ROOT
from tests.process.harness import free_port, stop

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"
HOST_BASE = "HOST BASE: the host's own base template"
HOSTILE_REST_FRAMEWORK = """
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 1,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
}
"""
# The host's own home page, on its own base.html: Tempora's pages must not pick that one up.
HOST_HOME = """
from django.views.generic import TemplateView

urlpatterns.append(path("", TemplateView.as_view(template_name="base.html")))
"""
CONSOLE_PAGES = [
    "",
    "jobs/",
    "jobs/new/",
    "executions/",
    "dead-letters/",
    "calendar/",
    "scheduler/",
    "tokens/",
    "calendars/new/",
]
# Paged lists, and the two that answer a plain list (few rows, computed: groups, tasks).
API_PAGES = ["jobs", "executions", "dead-letters", "calendars", "tokens"]
API_LISTS = [*API_PAGES, "groups", "tasks"]


def readme_snippet(name: str) -> str:
    """The one Python block between README's `<!-- host-NAME:start -->` and `:end -->` markers."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(rf"<!-- host-{name}:start -->\s*```python\n(.*?)```\s*<!-- host-{name}:end -->", text, re.S)
    if len(found) != 1:
        pytest.fail(
            f"README.md needs exactly one ```python block between <!-- host-{name}:start --> and "
            f"<!-- host-{name}:end -->; found {len(found)}"
        )
    return found[0]


@dataclass
class Host:
    """The fresh project: its directory, its virtualenv, and the processes it runs."""

    root: Path
    venv: Path
    started: list[tuple[str, subprocess.Popen, Path]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        # Nothing of this repository's environment: not its settings module, its path or its venv.
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", str(self.root)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        }

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / "python"), "manage.py", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, label: str, *args: str) -> subprocess.Popen:
        log = self.root / f"{label}.log"
        with log.open("w") as out:
            popen = subprocess.Popen(
                [str(self.venv / "bin" / "python"), "manage.py", *args],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((label, popen, log))
        return popen

    def logs(self) -> list[tuple[str, str]]:
        return [(f"{label} log", log.read_text(errors="replace")[-20_000:]) for label, _popen, log in self.started]


class Browser:
    """Cookies, CSRF and JSON over urllib: what a browser or a script does, nothing more."""

    def __init__(self, base: str, host: Host) -> None:
        self.base, self.host = base, host
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def logs(self) -> list[tuple[str, str]]:
        return self.host.logs()

    def request(
        self, path: str, *, data: dict | None = None, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict, str]:
        headers = {**(headers or {})}
        payload = None
        if data is not None:
            payload = urllib.parse.urlencode(data).encode()
        elif body is not None:
            payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if payload is not None:
            headers["X-CSRFToken"] = self.csrf()
            headers["Referer"] = self.base + path
        request = urllib.request.Request(self.base + path, data=payload, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def get(self, path: str, **kwargs) -> tuple[int, dict, str]:
        return self.request(path, **kwargs)

    def json(self, path: str, *, body: dict | None = None, expect: int = 200) -> dict:
        status, headers, text = self.request(path, body=body, headers={"Accept": "application/json"})
        assert status == expect, f"{path}: {status} {text[:2000]}"
        assert headers["Content-Type"].startswith("application/json"), f"{path}: {headers['Content-Type']}"
        return json.loads(text)

    def csrf(self) -> str:
        return next((cookie.value for cookie in self.cookies if cookie.name == "csrftoken"), "")


@pytest.fixture(scope="module")
def host(wheel, tmp_path_factory) -> Host:
    settings_snippet, urls_snippet = readme_snippet("settings"), readme_snippet("urls")  # before the slow part
    root = tmp_path_factory.mktemp("host")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The wheel's own dependencies only, resolved by pip (its cache and the machine's configured
    # indexes and find-links make a second run quick); no test tool goes in.
    pip_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO", "PYTHON", "VIRTUAL_ENV", "DATABASE_URL", "TEMPORA"))
    }
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        env=pip_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    project = root / "project"
    project.mkdir()
    subprocess.run([str(venv / "bin" / "django-admin"), "startproject", "host", str(project)], check=True)
    made = Host(project, venv)

    (project / "templates").mkdir()
    (project / "templates" / "base.html").write_text(f"<!doctype html><title>host</title><h1>{HOST_BASE}</h1>\n")
    settings = project / "host" / "settings.py"
    text = settings.read_text()
    assert "'DIRS': []," in text, "startproject's TEMPLATES changed: adapt the test's edit"
    text = text.replace("'DIRS': [],", "'DIRS': [BASE_DIR / 'templates'],")
    settings.write_text(text + HOSTILE_REST_FRAMEWORK + "\n" + settings_snippet)
    (project / "host" / "urls.py").write_text(urls_snippet + HOST_HOME)

    for step in (
        ["migrate", "--noinput"],
        ["createsuperuser", "--noinput", "--username", "owner", "--email", "owner@example.com"],
    ):
        done = made.manage(*step)
        assert done.returncode == 0, f"{' '.join(step)}:\n{done.stdout}{done.stderr}"
    yield made
    for _label, popen, _log in reversed(made.started):
        stop(popen, 30)


@pytest.fixture(scope="module")
def server(host) -> str:
    port = free_port()
    popen = host.start("runserver", "runserver", "--noreload", f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert popen.poll() is None, f"runserver exited:\n{host.logs()[-1][1]}"
        try:
            urllib.request.urlopen(f"{base}/", timeout=2).close()
            return base
        except urllib.error.HTTPError:
            return base  # it answers: what it answers is for the tests to judge
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"runserver did not answer within 30 s:\n{host.logs()[-1][1]}")


@pytest.fixture(scope="module")
def signed_in(server, host) -> Browser:
    """Signed in through the console's own form, as a person would."""
    browser = Browser(server, host)
    status, _headers, page = browser.get("/ops/login/")
    assert status == 200 and 'name="csrfmiddlewaretoken"' in page, f"/ops/login/: {status}\n{page[:3000]}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, _headers, page = browser.request(
        "/ops/login/", data={"username": "owner", "password": PASSWORD, "next": "/ops/", "csrfmiddlewaretoken": token}
    )
    assert status == 200 and "Sign out" in page, page[:2000]  # followed the redirect to the dashboard
    return browser


def assert_ours(browser: Browser, path: str) -> None:
    status, _headers, page = browser.get(path)
    assert status == 200, f"{path}: {status}\n{page[:3000]}"
    assert HOST_BASE not in page, f"{path} rendered the host's base.html"
    assert 'href="/ops/"' in page, f"{path} has no link to the console's home"
    assert "/static/scheduler_app/" in page, f"{path} loads none of the console's static files"


def test_the_readme_settings_pass_every_check(host):
    checked = host.manage("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "tempora." not in checked.stdout + checked.stderr


def test_every_console_page_answers_on_tempora_s_own_templates(signed_in):
    for page in CONSOLE_PAGES:
        assert_ours(signed_in, f"/ops/{page}")
    status, _headers, css = signed_in.get("/static/scheduler_app/css/app.css")
    assert status == 200 and css


def test_the_api_docs_are_served_from_the_host_itself(signed_in):
    status, _headers, page = signed_in.get("/ops/api/docs/")
    assert status == 200, page[:2000]
    scripts = re.findall(r'src="(/static/drf_spectacular_sidecar/[^"]+)"', page)
    assert scripts, page[:2000]
    for script in scripts:
        assert signed_in.get(script)[0] == 200, script


def test_the_hosts_own_pages_keep_the_hosts_base_template(server, host):
    browser = Browser(server, host)
    status, _headers, page = browser.get("/")
    assert status == 200 and HOST_BASE in page and "Tempora" not in page


def test_every_api_list_answers_in_tempora_s_shape_whatever_the_hosts_rest_framework(signed_in, server, host):
    for name in ("laptop", "ci"):
        assert signed_in.json("/ops/api/tokens/", body={"name": name}, expect=201)["key"]
    for name in API_PAGES:
        body = signed_in.json(f"/ops/api/{name}/")
        # Not the host's LimitOffset shape: page numbers, or a cursor (no count) on the run histories.
        paging = "next" if name in ("executions", "dead-letters") else "count"
        assert set(body) >= {paging, "results"}, f"{name}: {sorted(body)}"
    tokens = signed_in.json("/ops/api/tokens/")
    assert tokens["count"] == len(tokens["results"]) == 2  # the host's PAGE_SIZE is 1
    assert signed_in.json("/ops/api/groups/") == []
    assert "tempora.sample_job" in {task["name"] for task in signed_in.json("/ops/api/tasks/")}
    # Authentication and permissions are Tempora's: the host's AllowAny lets no one in.
    anonymous = Browser(server, host)
    for name in API_LISTS:
        status, _headers, _text = anonymous.get(f"/ops/api/{name}/", headers={"Accept": "application/json"})
        assert status in (401, 403), f"{name}: anonymous got {status}"


def test_a_job_made_through_the_api_is_run_by_the_hosts_runscheduler(signed_in, host):
    job = signed_in.json(
        "/ops/api/jobs/",
        expect=201,
        body={
            "name": "host-smoke",
            "task": "tempora.sample_job",
            "kwargs": {"message": "from the host"},
            "triggers": [{"kind": "once", "delay_seconds": 2}],
        },
    )
    scheduler = host.start("runscheduler", "runscheduler")
    deadline, runs = time.monotonic() + 60, []
    while time.monotonic() < deadline and not any(run["status"] == "succeeded" for run in runs):
        assert scheduler.poll() is None, "runscheduler exited"
        time.sleep(0.5)
        runs = signed_in.json(f"/ops/api/jobs/{job['id']}/executions/")["results"]
    assert [run["status"] for run in runs] == ["succeeded"], runs
    stop(scheduler, 30)
    assert scheduler.returncode == 0
    # The pages that need a job and a run, now that both exist.
    assert_ours(signed_in, f"/ops/jobs/{job['id']}/")
    assert_ours(signed_in, f"/ops/executions/{runs[0]['id']}/")

"""The console in a real browser (Debian's Chromium through Playwright) against a live server
and a real `manage.py runscheduler` on the same test database.

Each page is saved as a screenshot in test-artifacts/screenshots/ (git-ignored) so people can
look at them: light and dark, English and Chinese, desktop and phone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.db import connection

from scheduler_app import services
from scheduler_app.models import Execution, Job, SchedulerNode
from tests.web.conftest import XSS

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
PASSWORD = "browser-pass-123"

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it (.ci/run)
    if os.environ.get("TEMPORA_REQUIRE_BROWSER"):
        raise RuntimeError("TEMPORA_REQUIRE_BROWSER is set but /usr/bin/chromium is missing")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


def database_url() -> str:
    """The test database as a DATABASE_URL, so the scheduler process writes where the test reads."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def scheduler(transactional_db, tmp_path):
    """A real runscheduler process; stopped (SIGTERM, then SIGKILL) before the database is flushed.

    Tests ask for the database before `live_server`, so the session's live server stops before
    the test database is dropped (PostgreSQL refuses to drop a database still in use)."""
    log = open(tmp_path / "runscheduler.log", "w")
    env = {**os.environ, "DATABASE_URL": database_url(), "SCHEDULER_LEASE_SECONDS": "3", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runscheduler", "--drain", "2"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not SchedulerNode.objects.filter(role="leader").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            log.flush()
            pytest.fail("runscheduler did not start:\n" + (tmp_path / "runscheduler.log").read_text()[-3000:])
        time.sleep(0.2)
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="session")
def release_test_database(django_db_setup, django_db_blocker, live_server):
    """At the end of the session, end PostgreSQL sessions the live server's threads left open.

    Set up after the live server and the test database, so it runs before the database is
    dropped: PostgreSQL refuses to drop a database other sessions still use, and the test
    database was left behind with a warning.
    """
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture
def browser(monkeypatch, release_test_database):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's async-safety check is told so.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
# Reports every Content-Security-Policy violation the page meets to the test (an init script
# runs before the page's own and is not subject to its policy).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolation(
  e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));
"""


class Watch:
    """What must never happen on a page: errors, alert() calls (an XSS that ran would show up
    as an alert), Content-Security-Policy violations, console errors, requests to any host but
    this machine."""

    def __init__(self):
        self.errors: list[str] = []
        self.alerts: list[str] = []
        self.violations: list[str] = []
        self.console: list[str] = []
        self.offsite: list[str] = []

    def attach(self, page):
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", lambda dialog: (self.alerts.append(dialog.message), dialog.dismiss()))
        page.expose_function("__cspViolation", lambda text: self.violations.append(f"{page.url}: {text}"))
        page.add_init_script(REPORT_VIOLATIONS)
        page.on(
            "console", lambda message: message.type == "error" and self.console.append(f"{page.url}: {message.text}")
        )
        page.on("request", self._request)
        return page

    def _request(self, request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob") and url.netloc.rsplit(":", 1)[0] not in LOCAL_HOSTS:
            self.offsite.append(request.url)

    def assert_clean(self, *, expected_statuses: tuple[int, ...] = ()) -> None:
        """`expected_statuses`: answers the test provoked (e.g. 429), which Chrome logs as errors."""
        assert self.errors == [] and self.alerts == []
        assert self.violations == [], self.violations
        expected = tuple(f"the server responded with a status of {status} " for status in expected_statuses)
        assert [line for line in self.console if not any(text in line for text in expected)] == [], self.console
        assert self.offsite == [], self.offsite


def shot(page, name: str) -> None:
    page.wait_for_timeout(250)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_build_run_watch_pause_and_delete_a_job(scheduler, live_server, browser, django_user_model):
    django_user_model.objects.create_user("ada", "ada@example.com", PASSWORD, is_staff=True)
    base = live_server.url
    watch = Watch()
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="light", timezone_id="Europe/Berlin"
    )
    page = watch.attach(context.new_page())
    page.goto(f"{base}/login/")
    shot(page, "01-login")
    sign_in(page, base, "ada")

    # Build a cron job with the visual builder, watching the preview.
    page.goto(f"{base}/jobs/new/")
    page.fill("#id_name", "browser-job")
    page.select_option("#id_task", "tempora.sample_job")
    expect(page.locator("#task-info")).to_contain_text("Log a message and return it")
    page.fill("#id_kwargs", '{"message": "hello from the browser"}')
    page.fill("#id_triggers-0-cron_expression", "0 12 * * MON")
    # The expression redraws the pickers (server-side) and the preview describes it.
    expect(page.locator('input[name="triggers-0-cb_hour"][value="12"]')).to_be_checked()
    expect(page.locator("#preview")).to_contain_text("At 12:00, only on Monday")
    page.select_option('select[name="triggers-0-cb_minute_mode"]', "step")
    page.fill('input[name="triggers-0-cb_minute_step"]', "2")
    page.select_option('select[name="triggers-0-cb_hour_mode"]', "every")
    page.select_option('select[name="triggers-0-cb_weekday_mode"]', "every")
    # The pickers write the expression, and the preview follows.
    expect(page.locator("#id_triggers-0-cron_expression")).to_have_value("*/2 * * * *")
    expect(page.locator("#preview")).to_contain_text("Every 2 minutes")
    expect(page.locator("#preview ol.runs li")).to_have_count(5)
    shot(page, "02-job-form-builder")

    page.click("button:has-text('Create job')")
    expect(page.locator("h1#job-title")).to_contain_text("browser-job")
    expect(page.locator("#toasts")).to_contain_text("Created browser-job")
    job = Job.objects.get(name="browser-job")
    assert job.triggers.get().cron_expression == "*/2 * * * *" and job.kwargs == {"message": "hello from the browser"}
    shot(page, "03-job-detail")

    # Watch the dashboard while the job is run from another tab: the run appears without a reload.
    dashboard = watch.attach(context.new_page())
    dashboard.goto(f"{base}/")
    dashboard.evaluate("window.__notReloaded = true")
    page.click("button[aria-label='Run browser-job now']")
    expect(page.locator("#toasts")).to_contain_text("Run requested for browser-job")
    latest = dashboard.locator("#latest-runs tbody tr", has_text="browser-job")
    expect(latest.filter(has_text="Run now").filter(has_text="Succeeded")).to_have_count(1, timeout=20000)
    assert dashboard.evaluate("window.__notReloaded") is True
    run = Execution.objects.get(job=job, reason="manual")
    assert run.status == "succeeded" and run.result["message"] == "hello from the browser"
    shot(dashboard, "04-dashboard-after-run")

    # Run it once with other arguments, from the small form under its keyword arguments.
    page.click("summary:has-text('Run now with other arguments')")
    page.fill("details.run-with textarea[name=kwargs]", '{"message": "just this once"}')
    page.click("button:has-text('Run now with these')")
    expect(page.locator("#toasts")).to_contain_text("Run requested for browser-job")
    expect(latest.filter(has_text="Run now").filter(has_text="Succeeded")).to_have_count(2, timeout=20000)
    given = Execution.objects.filter(job=job, reason="manual").exclude(pk=run.pk).get()
    assert given.kwargs == {"message": "just this once"} and given.result["message"] == "just this once"

    # Pause it; the page updates itself.
    page.click("button[aria-label='Pause browser-job']")
    expect(page.locator("#toasts")).to_contain_text("Paused browser-job")
    expect(page.locator("#job-summary .badge", has_text="Paused")).to_be_visible()
    job.refresh_from_db()
    assert job.paused

    # Delete it, confirming in the dialog; its history stays.
    page.click("button[aria-label='Delete browser-job']")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete the job “browser-job”?")
    shot(page, "05-confirm-delete")
    dialog.locator("[data-answer=yes]").click()
    expect(page).to_have_url(f"{base}/jobs/")
    expect(page.locator("#toasts")).to_contain_text("Deleted browser-job")
    assert not Job.objects.filter(name="browser-job").exists()
    assert Execution.objects.filter(job_name="browser-job").exists()

    watch.assert_clean()
    context.close()


def test_every_page_with_hostile_text_themes_languages_and_a_phone(
    transactional_db, live_server, browser, django_user_model, now
):
    user = django_user_model.objects.create_user("ada", "ada@example.com", PASSWORD, is_staff=True)
    hostile = services.job_create(
        name=XSS,
        task="tempora.sample_job",
        description=XSS,
        kwargs={"message": XSS},
        owner=user,
        group="hostile",
        tags=["xss"],
        triggers=[{"kind": "cron", "cron_expression": "*/5 * * * *"}],
        timezone="Asia/Shanghai",
    )
    services.job_create(
        name="nightly-report",
        task="tempora.sample_job",
        owner=user,
        group="reports",
        triggers=[{"kind": "daily", "at": "02:30"}, {"kind": "weekly", "days": [0], "at": "09:00"}],
    )
    run = Execution.objects.create(
        job=hostile,
        job_name=hostile.name,
        scheduled_for=now,
        run_after=now,
        started_at=now,
        finished_at=now,
        status="failed",
        error=XSS,
        output=XSS,
        traceback=XSS,
        result={"html": XSS},
        dead_letter=True,
    )
    services.calendar_create(name="holidays", excluded_dates=["2026-12-25", "2026-12-26"], owner=user)
    services.token_create(user=user, name=XSS)
    base = live_server.url
    watch = Watch()
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="light", timezone_id="America/New_York"
    )
    page = watch.attach(context.new_page())
    sign_in(page, base, "ada")
    pages = [
        ("dashboard", "/"),
        ("jobs", "/jobs/"),
        ("job-detail", f"/jobs/{hostile.pk}/"),
        ("job-edit", f"/jobs/{hostile.pk}/edit/"),
        ("executions", "/executions/"),
        ("execution-detail", f"/executions/{run.pk}/"),
        ("dead-letters", "/dead-letters/"),
        ("calendar", "/calendar/"),
        ("calendar-new", "/calendars/new/"),
        ("scheduler", "/scheduler/"),
        ("tokens", "/tokens/"),
        ("job-delete-confirm", f"/jobs/{hostile.pk}/delete/"),
    ]
    for name, path in pages:
        page.goto(base + path)
        # Hostile text is text: no <img> from it anywhere, and no alert fired.
        assert page.locator("img[src=x]").count() == 0, path
        shot(page, f"10-{name}")
    page.goto(base + "/calendar/")
    page.locator(".day-link").filter(has=page.locator(".day-total")).first.click()
    expect(page.locator("#day-panel h2")).to_contain_text("Runs on")
    shot(page, "11-calendar-day-open")
    # The viewer's zone came from the browser.
    expect(page.locator("#viewer-zone")).to_have_value("America/New_York")

    # Dark theme: toggled, remembered across pages.
    page.goto(base + "/")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") is None
    page.click("[data-theme-toggle]")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    page.goto(base + "/jobs/")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    expect(page.locator("[data-theme-toggle]")).to_have_attribute("aria-pressed", "true")
    for name, path in [
        ("dashboard", "/"),
        ("jobs", "/jobs/"),
        ("job-form", "/jobs/new/"),
        ("execution-detail", f"/executions/{run.pk}/"),
    ]:
        page.goto(base + path)
        shot(page, f"20-dark-{name}")
    page.click("[data-theme-toggle]")
    assert page.evaluate("localStorage.getItem('tempora-theme')") is None  # back to following the system

    # Chinese, switched from the header, kept across pages.
    page.select_option("select[name=language]", "zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("nav.sections")).to_contain_text("仪表盘")
    for name, path in [
        ("dashboard", "/"),
        ("jobs", "/jobs/"),
        ("job-form", "/jobs/new/"),
        ("calendar", "/calendar/"),
        ("scheduler", "/scheduler/"),
    ]:
        page.goto(base + path)
        shot(page, f"30-zh-{name}")
    page.select_option("select[name=language]", "en")
    expect(page.locator("nav.sections")).to_contain_text("Dashboard")

    # A phone.
    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        color_scheme="dark",
    )
    mobile = watch.attach(phone.new_page())
    sign_in(mobile, base, "ada")
    for name, path in [
        ("dashboard", "/"),
        ("jobs", "/jobs/"),
        ("job-form", "/jobs/new/"),
        ("job-detail", f"/jobs/{hostile.pk}/"),
        ("calendar", "/calendar/"),
    ]:
        mobile.goto(base + path)
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, (path, width)  # nothing wider than the phone: tables scroll inside
        shot(mobile, f"40-phone-{name}")

    watch.assert_clean()
    phone.close()
    context.close()


def test_keyboard_only_use(transactional_db, live_server, browser, django_user_model):
    django_user_model.objects.create_user("ada", "ada@example.com", PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    expect(page.locator("#id_username")).to_be_focused()  # the login form starts where you type
    page.keyboard.type("ada")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Dashboard")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.goto(f"{live_server.url}/jobs/")
    page.keyboard.press("/")
    expect(page.locator("input[type=search]")).to_be_focused()
    context.close()


# The Content-Security-Policy, in a real browser -------------------------------------------------

# Console routes that are actions, not pages: each is exercised below through the page that
# posts to it (so htmx's requests and answers run under the policy too), or is a fragment of one.
ACTIONS = {
    "logout",
    "set-zone",
    "jobs-bulk",
    "job-preview",
    "task-info",
    "job-run",
    "job-pause",
    "job-resume",
    "job-duplicate",
    "execution-retry",
    "execution-cancel",
    "dead-letters-acknowledge",
    "scheduler-pause",
    "scheduler-resume",
    "scheduler-shutdown",
    "scheduler-settings",
    "token-revoke",
}


def post_form(page, url: str, **fields: str) -> None:
    """Submit a real form from the page, as a browser without JS would (the no-JS confirmation pages)."""
    page.evaluate(
        """([url, fields]) => {
          const form = document.createElement("form");
          form.method = "post";
          form.action = url;
          const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
          for (const [name, value] of Object.entries({...fields, csrfmiddlewaretoken: token})) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
          }
          document.body.appendChild(form);
          form.submit();
        }""",
        [url, fields],
    )
    page.wait_for_load_state()


def test_every_page_passes_the_content_security_policy(
    transactional_db, live_server, browser, django_user_model, settings, now
):
    from scheduler_app.urls.console import urlpatterns as console_routes

    user = django_user_model.objects.create_superuser("ada", "ada@example.com", PASSWORD)
    job = services.job_create(
        name="nightly-report",
        task="tempora.sample_job",
        owner=user,
        group="reports",
        kwargs={"message": XSS},
        triggers=[{"kind": "daily", "at": "02:30"}],
    )
    failed = Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now,
        run_after=now,
        started_at=now,
        finished_at=now,
        status="failed",
        error=XSS,
        output=XSS,
        dead_letter=True,
    )
    running = Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now, run_after=now, started_at=now, status="running", attempt=2
    )
    calendar = services.calendar_create(name="holidays", excluded_dates=["2026-12-25"], owner=user)
    services.token_create(user=user, name="ci")
    base = live_server.url
    watch = Watch()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch.attach(context.new_page())

    def visit(path: str):
        response = page.goto(base + path)
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (path, policy)
        return response

    visit("/login/")
    visit("/admin/login/")
    sign_in(page, base, "ada")
    pages = {
        "dashboard": "/",
        "jobs": "/jobs/",
        "job-create": "/jobs/new/",
        "job": f"/jobs/{job.pk}/",
        "job-edit": f"/jobs/{job.pk}/edit/",
        "job-delete": f"/jobs/{job.pk}/delete/",
        "executions": "/executions/",
        "execution": f"/executions/{failed.pk}/",
        "dead-letters": "/dead-letters/",
        "calendar": "/calendar/",
        "calendar-day": f"/calendar/{now.date().isoformat()}/",
        "calendar-create": "/calendars/new/",
        "calendar-edit": f"/calendars/{calendar.pk}/edit/",
        "calendar-delete": f"/calendars/{calendar.pk}/delete/",
        "scheduler": "/scheduler/",
        "tokens": "/tokens/",
    }
    names = {pattern.name for pattern in console_routes}
    assert names - {"login"} == set(pages) | ACTIONS, "a new console route: add it here"
    for path in pages.values():
        visit(path)
    for path in ("/admin/", "/admin/scheduler_app/job/", f"/admin/scheduler_app/job/{job.pk}/change/"):
        visit(path)

    # The API docs: served from the sidecar, their start-up code runs by nonce and draws the schema.
    visit("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tempora API", timeout=20000)
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    visit("/api/redoc/")
    expect(page.locator("#redoc-container h1").first).to_contain_text("Tempora API", timeout=20000)
    expect(page.locator("#redoc-container")).to_contain_text("List your API tokens")

    # The no-JS confirmation pages, reached by posting as a form would.
    visit("/jobs/")
    post_form(page, "/jobs/bulk/", action="delete", ids=str(job.pk))
    expect(page.locator("h1")).to_contain_text("Delete")
    visit(f"/executions/{running.pk}/")
    post_form(page, f"/executions/{running.pk}/cancel/")
    expect(page.locator("main form")).to_be_visible()
    visit("/dead-letters/")
    post_form(page, "/dead-letters/acknowledge/", all="1")
    expect(page.locator("h1")).to_contain_text("dead letter")
    visit("/scheduler/")
    post_form(page, "/scheduler/shutdown/")
    expect(page.locator("main form")).to_be_visible()

    # htmx under the policy: the live preview and task panel, a run request's toast, the
    # confirmation dialog, the calendar's day panel, the theme toggle.
    visit("/jobs/new/")
    page.fill("#id_name", "csp-job")
    page.select_option("#id_task", "tempora.sample_job")
    expect(page.locator("#task-info")).to_contain_text("Log a message and return it")
    page.fill("#id_triggers-0-cron_expression", "0 12 * * MON")
    expect(page.locator("#preview")).to_contain_text("At 12:00, only on Monday")
    visit(f"/jobs/{job.pk}/")
    page.click("button[aria-label='Run nightly-report now']")
    expect(page.locator("#toasts")).to_contain_text("Run requested for nightly-report")
    page.click("button[aria-label='Delete nightly-report']")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.locator("#confirm-dialog [data-answer=no]").click()
    visit("/calendar/")
    page.locator(".day-link").filter(has=page.locator(".day-total")).first.click()
    expect(page.locator("#day-panel h2")).to_contain_text("Runs on")
    page.click("[data-theme-toggle]")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"

    # A throttled save (the API's write rate): the form stays as typed, with the error inline
    # and in a toast, and no job is created.
    settings.TEMPORA = {**settings.TEMPORA, "API_WRITE_THROTTLE": "1/minute"}
    visit("/jobs/new/")
    page.fill("#id_name", "first-save")
    page.select_option("#id_task", "tempora.sample_job")
    page.click("button:has-text('Create job')")
    expect(page.locator("h1#job-title")).to_contain_text("first-save")
    visit("/jobs/new/")
    page.fill("#id_name", "second-save")
    page.select_option("#id_task", "tempora.sample_job")
    page.click("button:has-text('Create job')")
    expect(page.locator("#form-errors")).to_contain_text("Too many changes in a short time")
    expect(page.locator("#toasts")).to_contain_text("Too many changes in a short time")
    expect(page.locator("#id_name")).to_have_value("second-save")
    assert not Job.objects.filter(name="second-save").exists()
    shot(page, "50-throttled-create")

    # A locked-out sign-in: a page that says how long.
    stranger = watch.attach(browser.new_context().new_page())
    for _ in range(settings.AXES_FAILURE_LIMIT):
        stranger.goto(f"{base}/login/")
        stranger.fill("#id_username", "ada")
        stranger.fill("#id_password", "wrong")
        stranger.click("main button[type=submit]")
    expect(stranger.locator("main")).to_contain_text("Too many failed sign-ins")
    shot(stranger, "51-login-locked")

    watch.assert_clean(expected_statuses=(429,))
    context.close()

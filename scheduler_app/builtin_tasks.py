"""The tasks that ship with Tempora.

Each built-in returns a JSON-serialisable dict saying what happened and raises on failure:
the scheduler records the exception as the run's error and the log records as its output.
The work lives in scheduler_app/builtin/; this module gives each task its name, its
parameters (the console and the API show them), its description, and the check its
arguments get when a job is saved (`validate`); each task runs that check again itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from scheduler_app.builtin import backup, fetch, mail
from scheduler_app.builtin import records as record_files  # `records` is process_data's parameter
from scheduler_app.registry import task

logger = logging.getLogger(__name__)


@task(name="tempora.sample_job", description="Log a message and return it: a harmless job to try Tempora with.")
def sample_job(message: str = "Hello from Tempora") -> dict:
    """Log `message`; return it with the UTC time the job ran."""
    ran_at = datetime.now(UTC).isoformat()
    logger.info("sample_job: %s", message)
    return {"message": message, "ran_at": ran_at}


@task(name="tempora.noop", description="Do nothing and return nothing: for trying schedules and for benchmarks.")
def noop() -> None:
    """Return at once; its runs measure the scheduler alone."""


@task(
    name="tempora.send_email",
    permission="scheduler_app.use_mail_tasks",
    description="Send an email from the configured sender through Django's email backend (EMAIL_* settings).",
    validate=mail.validate,
)
def send_email(
    to: str | list[str],
    subject: str,
    body: str,
    from_email: str | None = None,
    html: str | None = None,
    cc: str | list[str] | None = None,
    bcc: str | list[str] | None = None,
) -> dict:
    """Send one message; `to`, `cc` and `bcc` are an address, comma-separated addresses, or a list.

    kwargs: {"to": ["ops@example.com"], "subject": "Nightly report", "body": "All good.",
             "html": "<p>All good.</p>"}
    The sender is DEFAULT_FROM_EMAIL (from_email may only add a display name to it); at most
    TEMPORA_EMAIL_MAX_RECIPIENTS recipients, in TEMPORA_EMAIL_ALLOWED_DOMAINS if set. A bad
    address raises ValueError naming it; returns {"sent": 1, "to": [...], ...}.
    """
    return mail.send(to, subject, body, from_email=from_email, html=html, cc=cc, bcc=bcc)


@task(
    name="tempora.backup_database",
    permission="scheduler_app.use_file_tasks",
    description="Back up the default database (SQLite online backup or pg_dump) to a new file in the backup directory.",
    validate=backup.validate,
)
def backup_database(destination: str | None = None) -> dict:
    """Write a consistent backup of the default database into TEMPORA_BACKUP_DIR.

    `destination` is a name inside it: a directory ("nightly/", or none: the backup directory
    itself; the file is named `tempora-<engine>-<UTC timestamp>.<sqlite3|dump>`) or a file
    such as "weekly/db.dump", which must not exist yet. Returns {"path", "size_bytes",
    "engine", "duration_ms", ...}.
    """
    return backup.backup(destination)


@task(
    name="tempora.process_data",
    permission="scheduler_app.use_file_tasks",
    description="Summarise, deduplicate or validate records given inline or read from a CSV or JSON-lines file "
    "in the data directory.",
    validate=record_files.validate,
)
def process_data(
    records: list | None = None, source: str | None = None, operation: str = "summary", field: str | None = None
) -> dict:
    """Process records and report counts and throughput.

    kwargs: {"source": "orders.csv", "operation": "summary", "field": "amount"}
    `source` is a name inside TEMPORA_DATA_DIR.
    operations: "summary" (count; min/max/mean/sum of a numeric `field`, or of plain numbers),
    "deduplicate" (count before/after, on whole records or on `field`), "validate" (records
    missing `field`).
    """
    return record_files.process(records=records, source=source, operation=operation, field=field)


@task(
    name="tempora.http_request",
    permission="scheduler_app.use_network_tasks",
    description="Make an HTTP(S) request to a public address; fail on an error or an unexpected status, "
    "reporting status and latency.",
    validate=fetch.validate,
)
def http_request(
    url: str,
    method: str = "GET",
    headers: dict | None = None,
    body: Any = None,
    timeout: float | None = None,
    expected_status: int | list[int] | None = None,
) -> dict:
    """Request `url` and report status_code, latency_ms, response_size, body (first 10 KB) and error_class.

    kwargs: {"url": "https://example.com/health", "expected_status": [200, 204], "timeout": 10}
    A dict `body` is sent as JSON. Without expected_status any 4xx/5xx or network error fails
    the run; with it, only a status outside the list (or no answer at all) does. Private,
    loopback and metadata addresses are refused unless TEMPORA_HTTP_ALLOW_HOSTS names the
    host; `timeout` (default 30 s) bounds the whole request, up to TEMPORA_HTTP_MAX_TIMEOUT.
    """
    return fetch.request(
        url, method=method, headers=headers, body=body, timeout=timeout, expected_status=expected_status
    )

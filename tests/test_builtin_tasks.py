"""The built-in tasks against real parts: an SMTP server, an HTTP server, the test database, files.

Every server listens on 127.0.0.1 (which the HTTP tests put on the allow-list); nothing here
leaves the machine. What the fences refuse is tests/fences/.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from scheduler_app import builtin_tasks
from scheduler_app.builtin import backup, fetch
from scheduler_app.models import Job
from scheduler_app.registry import registry
from tests.fences.fakes import free_port, smtp_at, smtp_inbox

# Registration -------------------------------------------------------------------------

BUILTINS = {
    "tempora.sample_job": ["message"],
    "tempora.send_email": ["to", "subject", "body", "from_email", "html", "cc", "bcc"],
    "tempora.backup_database": ["destination"],
    "tempora.process_data": ["records", "source", "operation", "field"],
    "tempora.http_request": ["url", "method", "headers", "body", "timeout", "expected_status"],
}


@pytest.mark.parametrize(("name", "parameters"), BUILTINS.items())
def test_it_registers_every_builtin_with_a_description_and_parameters(name, parameters):
    info = registry.get(name)
    assert info.description
    assert [parameter.name for parameter in info.parameters] == parameters


# tempora.sample_job -------------------------------------------------------------------


def test_it_returns_the_message_and_the_utc_time_it_ran():
    before = datetime.now(UTC)
    result = builtin_tasks.sample_job("ping")
    assert result["message"] == "ping"
    ran_at = datetime.fromisoformat(result["ran_at"])
    assert ran_at.utcoffset() == timedelta(0)
    assert before <= ran_at <= datetime.now(UTC)


def test_it_logs_the_message(caplog):
    caplog.set_level("INFO")
    builtin_tasks.sample_job()
    assert "Hello from Tempora" in caplog.text


# tempora.send_email -------------------------------------------------------------------


@pytest.fixture
def smtp(settings):
    with smtp_inbox(settings) as inbox:
        yield inbox


def test_it_sends_an_email_through_smtp(smtp):
    result = builtin_tasks.send_email("ops@example.com", "Nightly report", "All good.")
    assert result["sent"] == 1
    assert result["to"] == ["ops@example.com"]
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "tempora@example.com"
    assert envelope.rcpt_tos == ["ops@example.com"]
    [message] = smtp.messages()
    assert message["Subject"] == "Nightly report"
    assert message.get_body(("plain",)).get_content().strip() == "All good."


def test_it_sends_one_message_to_a_list_of_recipients(smtp):
    result = builtin_tasks.send_email(["a@example.com", "Bea <b@example.com>"], "Hi", "Body")
    assert result["to"] == ["a@example.com", "Bea <b@example.com>"]
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["a@example.com", "b@example.com"]


def test_it_sends_an_html_alternative_and_the_senders_display_name(smtp):
    builtin_tasks.send_email(
        "a@example.com", "Hi", "plain text", from_email="Reports <tempora@example.com>", html="<p>rich</p>"
    )
    [message] = smtp.messages()
    assert message["From"] == "Reports <tempora@example.com>"
    assert message.get_body(("html",)).get_content().strip() == "<p>rich</p>"
    assert message.get_body(("plain",)).get_content().strip() == "plain text"


def test_it_refuses_a_bad_address_naming_it(smtp):
    with pytest.raises(ValueError, match="not-an-address"):
        builtin_tasks.send_email(["ok@example.com", "not-an-address"], "Hi", "Body")
    assert smtp.envelopes == []


def test_it_refuses_a_bad_sender_naming_it(smtp):
    with pytest.raises(ValueError, match="from_email: 'nobody@'"):
        builtin_tasks.send_email("ok@example.com", "Hi", "Body", from_email="nobody@")


def test_it_fails_when_the_smtp_server_is_unreachable(settings):
    smtp_at(settings, free_port())
    with pytest.raises(ConnectionRefusedError):
        builtin_tasks.send_email("ops@example.com", "Hi", "Body")


# tempora.backup_database ----------------------------------------------------------------


def pg_restore(*args: str) -> str:
    done = subprocess.run(["pg_restore", *args], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def copied_rows(dump: str, table: str) -> int:
    """How many rows a pg_dump custom-format file holds for `table` (read without a server)."""
    sql = pg_restore("--data-only", f"--table={table}", "--file=-", dump)
    data = sql.split(f"COPY public.{table} ", 1)[1].split("\n", 1)[1]
    return len(data.split("\n\\.\n", 1)[0].splitlines())


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.TEMPORA_BACKUP_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db(transaction=True)
def test_it_backs_up_the_active_database(backup_dir, tmp_path, make_job):
    for _ in range(3):
        make_job()
    result = builtin_tasks.backup_database()
    path = Path(result["path"])
    assert path.parent == tmp_path
    assert result["engine"] == connection.vendor
    assert result["size_bytes"] == path.stat().st_size > 0
    assert result["duration_ms"] >= 0
    table = Job._meta.db_table
    if connection.vendor == "sqlite":
        with sqlite3.connect(path) as copy:
            assert copy.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (3,)
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    else:
        assert connection.vendor == "postgresql"
        assert f"TABLE DATA public {table} " in pg_restore("--list", str(path))
        assert copied_rows(str(path), table) == 3


@pytest.mark.django_db
def test_it_names_the_backup_with_a_utc_timestamp(backup_dir):
    before = datetime.now(UTC).replace(microsecond=0)
    result = builtin_tasks.backup_database()
    name = Path(result["path"]).name
    match = re.fullmatch(rf"tempora-{connection.vendor}-(\S+Z)\.(sqlite3|dump)", name)
    assert match, name
    stamp = datetime.strptime(match.group(1), "%Y-%m-%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)


@pytest.mark.django_db
def test_it_writes_to_the_backup_dir_setting_by_default(settings, tmp_path):
    settings.TEMPORA_BACKUP_DIR = tmp_path / "backups"
    result = builtin_tasks.backup_database()
    assert Path(result["path"]).parent == tmp_path / "backups"
    assert Path(result["path"]).is_file()


@pytest.mark.django_db
def test_it_writes_to_a_named_file_leaving_no_partial_file(backup_dir):
    target = backup_dir / "nested" / "nightly.backup"
    result = builtin_tasks.backup_database("nested/nightly.backup")
    assert result["path"] == str(target)
    assert os.listdir(target.parent) == ["nightly.backup"]


def test_it_leaves_neither_target_nor_partial_file_when_writing_fails(tmp_path):
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with (
            pytest.raises(RuntimeError, match="disk on fire"),
            backup.exclusive_file(directory, tmp_path, "backup.sqlite3", "backup.sqlite3") as (output, _path),
        ):
            os.write(output, b"half a backup")
            raise RuntimeError("disk on fire")
    finally:
        os.close(directory)
    assert os.listdir(tmp_path) == []


@pytest.mark.django_db
def test_it_refuses_a_destination_under_a_file(backup_dir):
    (backup_dir / "occupied").write_text("a file, not a directory")
    with pytest.raises(ValueError, match="goes through 'occupied', which is not a directory"):
        builtin_tasks.backup_database("occupied/backups/db.dump")


def test_it_reports_pg_dumps_error_output_without_the_password(tmp_path):
    database = {"NAME": "tempora", "HOST": "127.0.0.1", "PORT": free_port(), "USER": "postgres", "PASSWORD": "s3cret"}
    with (
        open(tmp_path / "db.dump", "wb") as output,
        pytest.raises(backup.BackupError, match=r"pg_dump exited with status 1: .*Connection refused") as failure,
    ):
        backup.pg_dump(database, output.fileno())
    assert "s3cret" not in str(failure.value)


# tempora.process_data -------------------------------------------------------------------

ORDERS = [
    {"id": "1", "customer": "ann", "amount": "10.5"},
    {"id": "2", "customer": "bob", "amount": "4"},
    {"id": "2", "customer": "bob", "amount": "4"},
    {"id": "3", "customer": "", "amount": "n/a"},
]


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.TEMPORA_DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def orders_csv(data_dir):
    """The name, inside the data directory, of a CSV file of ORDERS."""
    lines = ["id,customer,amount"] + [f"{o['id']},{o['customer']},{o['amount']}" for o in ORDERS]
    (data_dir / "orders.csv").write_text("\n".join(lines) + "\n")
    return "orders.csv"


@pytest.fixture
def orders_jsonl(data_dir):
    (data_dir / "orders.jsonl").write_text("\n".join(json.dumps(order) for order in ORDERS) + "\n\n")
    return "orders.jsonl"


def test_it_summarises_a_numeric_field_of_a_csv_file(orders_csv):
    result = builtin_tasks.process_data(source=orders_csv, field="amount")
    assert result["count"] == 4
    assert (result["numeric_count"], result["non_numeric_count"]) == (3, 1)
    assert (result["min"], result["max"], result["sum"]) == (4, 10.5, 18.5)
    assert result["mean"] == pytest.approx(18.5 / 3)


def test_it_summarises_plain_numbers():
    result = builtin_tasks.process_data(records=[3, 1, 2.5, 9])
    assert (result["count"], result["min"], result["max"], result["sum"], result["mean"]) == (4, 1, 9, 15.5, 3.875)


def test_it_only_counts_objects_when_no_field_is_named():
    result = builtin_tasks.process_data(records=[{"a": 1}, {"b": 2}])
    assert result["count"] == 2
    assert "sum" not in result


def test_it_reports_duration_and_throughput(orders_jsonl):
    result = builtin_tasks.process_data(source=orders_jsonl)
    assert result["duration_ms"] > 0
    assert result["records_per_second"] == pytest.approx(4 / (result["duration_ms"] / 1000), rel=0.05)


def test_it_deduplicates_a_jsonl_file(orders_jsonl):
    result = builtin_tasks.process_data(source=orders_jsonl, operation="deduplicate")
    assert (result["count_before"], result["count_after"], result["duplicates"]) == (4, 3, 1)


def test_it_deduplicates_on_one_field(orders_csv):
    result = builtin_tasks.process_data(source=orders_csv, operation="deduplicate", field="customer")
    assert (result["count_before"], result["count_after"]) == (4, 3)


def test_it_deduplicates_records_whatever_their_key_order():
    result = builtin_tasks.process_data(records=[{"a": 1, "b": 2}, {"b": 2, "a": 1}], operation="deduplicate")
    assert result["count_after"] == 1


def test_it_finds_records_missing_a_field(orders_csv):
    result = builtin_tasks.process_data(source=orders_csv, operation="validate", field="customer")
    assert (result["count"], result["valid"], result["invalid"]) == (4, 3, 1)
    assert result["invalid_records"] == [4]


def test_it_treats_an_absent_key_as_missing(orders_jsonl):
    result = builtin_tasks.process_data(source=orders_jsonl, operation="validate", field="email")
    assert (result["valid"], result["invalid"]) == (0, 4)


def test_it_names_a_missing_source_file(data_dir):
    with pytest.raises(ValueError, match=r"source: 'nowhere.csv' is not a readable file in the data directory"):
        builtin_tasks.process_data(source="nowhere.csv")


def test_it_refuses_an_unknown_operation():
    with pytest.raises(ValueError, match="'average' is not one of summary, deduplicate, validate"):
        builtin_tasks.process_data(records=[1], operation="average")


def test_it_refuses_an_unknown_file_type(tmp_path):
    (tmp_path / "orders.xlsx").write_bytes(b"")
    with pytest.raises(ValueError, match=r"must end in \.csv, \.jsonl or \.ndjson"):
        builtin_tasks.process_data(source=str(tmp_path / "orders.xlsx"))


def test_it_names_the_line_that_is_not_json(data_dir):
    (data_dir / "broken.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match=r"broken.jsonl line 2 is not JSON"):
        builtin_tasks.process_data(source="broken.jsonl")


def test_it_needs_records_or_a_source():
    with pytest.raises(ValueError, match=r"either records .* or source"):
        builtin_tasks.process_data()


def test_it_needs_a_field_to_validate():
    with pytest.raises(ValueError, match="field: validate needs"):
        builtin_tasks.process_data(records=[{"a": 1}], operation="validate")


def test_it_refuses_to_summarise_a_field_with_no_numbers(orders_csv):
    with pytest.raises(ValueError, match="'customer' has no numeric value in any of the 4 record"):
        builtin_tasks.process_data(source=orders_csv, field="customer")


# tempora.http_request -------------------------------------------------------------------

LARGE_BODY = b"x" * 50_000


class Handler(BaseHTTPRequestHandler):
    stop: threading.Event

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode() if length else ""
        if self.path == "/ok":
            self._reply(200, b"hello")
        elif self.path == "/missing":
            self._reply(404, b"no such page")
        elif self.path == "/broken":
            self._reply(500, b"it broke")
        elif self.path == "/slow":
            self.stop.wait(5)  # ended early when the test finishes
            self._reply(200, b"late")
        elif self.path == "/large":
            self._reply(200, LARGE_BODY)
        elif self.path == "/echo":
            echo = {"method": self.command, "headers": dict(self.headers), "body": sent}
            self._reply(200, json.dumps(echo).encode(), "application/json")
        else:
            self._reply(400, b"unknown test path")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format, *args):  # keep test output quiet
        pass


@pytest.fixture
def web(settings):
    """The base URL of an HTTP server on 127.0.0.1, which the allow-list names."""
    settings.TEMPORA_HTTP_ALLOW_HOSTS = ["127.0.0.1"]
    stop = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("TestHandler", (Handler,), {"stop": stop}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()


def test_it_reports_a_successful_request(web):
    result = builtin_tasks.http_request(f"{web}/ok")
    assert (result["status_code"], result["error_class"], result["body"], result["truncated"]) == (
        200,
        "success",
        "hello",
        False,
    )
    assert result["response_size"] == 5
    assert result["latency_ms"] > 0


def test_it_fails_on_a_404_naming_the_error_class(web):
    with pytest.raises(fetch.HttpRequestError, match=r"GET .*/missing returned 404 \(http_4xx\).*no such page"):
        builtin_tasks.http_request(f"{web}/missing")


def test_it_fails_on_a_500_naming_the_error_class(web):
    with pytest.raises(fetch.HttpRequestError, match=r"returned 500 \(http_5xx\)") as failure:
        builtin_tasks.http_request(f"{web}/broken")
    assert failure.value.result["body"] == "it broke"


def test_it_accepts_an_error_status_that_was_expected(web):
    result = builtin_tasks.http_request(f"{web}/missing", expected_status=[404, 410])
    assert (result["status_code"], result["error_class"]) == (404, "http_4xx")


def test_it_fails_when_a_success_was_not_the_expected_status(web):
    with pytest.raises(fetch.HttpRequestError, match=r"returned 200 \(success\).*expected 201"):
        builtin_tasks.http_request(f"{web}/ok", expected_status=201)


def test_it_classifies_a_timeout(web):
    with pytest.raises(fetch.HttpRequestError, match=r"failed: timeout") as failure:
        builtin_tasks.http_request(f"{web}/slow", timeout=0.3)
    assert failure.value.error_class == "timeout"


def test_it_classifies_a_refused_connection(settings):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = ["127.0.0.1"]
    with pytest.raises(fetch.HttpRequestError, match=r"failed: connection_error") as failure:
        builtin_tasks.http_request(f"http://127.0.0.1:{free_port()}/")
    assert failure.value.result["status_code"] is None


def test_it_classifies_a_name_that_does_not_resolve(web):
    with pytest.raises(fetch.HttpRequestError, match=r"failed: dns_error"):
        builtin_tasks.http_request("http://no-such-host.invalid/")


def test_it_truncates_a_large_body_to_10_kb(web):
    result = builtin_tasks.http_request(f"{web}/large")
    assert result["truncated"] is True
    assert result["body"] == "x" * 10 * 1024
    assert result["response_size"] == len(LARGE_BODY)


def test_it_sends_a_dict_body_as_json(web):
    result = builtin_tasks.http_request(f"{web}/echo", method="post", body={"answer": 42})
    echo = json.loads(result["body"])
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"answer": 42}
    assert echo["headers"]["Content-Type"] == "application/json"


def test_it_sends_a_string_body_and_headers(web):
    result = builtin_tasks.http_request(
        f"{web}/echo", method="PUT", body="plain words", headers={"X-Token": "abc", "Content-Type": "text/csv"}
    )
    echo = json.loads(result["body"])
    assert (echo["method"], echo["body"]) == ("PUT", "plain words")
    assert (echo["headers"]["X-Token"], echo["headers"]["Content-Type"]) == ("abc", "text/csv")


def test_it_refuses_a_url_that_is_not_http():
    with pytest.raises(ValueError, match="'file:///etc/passwd' is not an http:// or https:// URL"):
        builtin_tasks.http_request("file:///etc/passwd")

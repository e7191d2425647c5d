"""The node's run journal: what it writes, what it proves, and when its segments go."""

from __future__ import annotations

import stat
import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduler_app.engine import journal
from scheduler_app.engine.dispatch import Dispatcher
from scheduler_app.engine.journal import Journal
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.writer import Outcome, Writer
from scheduler_app.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)  # worker threads write through their own connections
NODE = "host:101:120000000000"
NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def journal_dir(settings, tmp_path):
    settings.SCHEDULER_JOURNAL_DIR = tmp_path / "journal"
    return settings.SCHEDULER_JOURNAL_DIR


def succeeded(**fields) -> RunResult:
    return RunResult("succeeded", NOON, NOON + timedelta(seconds=2), **fields)


def segments(node: str = NODE) -> list[str]:
    return sorted(path.name for path in journal.node_directory(node).glob("*.log"))


def test_it_proves_what_started_and_what_finished_with_its_result():
    written = Journal.open(NODE)
    written.started(7)
    written.started(8)
    written.finished(7, succeeded(result={"rows": 3}, output="done\n"))
    replay = journal.read(NODE)
    assert replay.started == {7, 8}
    assert set(replay.finished) == {7}
    assert replay.finished[7] == succeeded(result={"rows": 3}, output="done\n")
    assert replay.complete  # same boot, nothing failed: a queued run not in it never started


def test_it_is_private_to_the_scheduler_user():
    Journal.open(NODE).started(7)
    path = journal.node_directory(NODE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()} == {0o600}


def test_there_is_nothing_to_read_for_a_node_without_a_journal_here():
    assert journal.read("elsewhere:1:120000000000") is None


def test_read_after_a_reboot_it_proves_what_finished_but_not_what_never_started(monkeypatch):
    written = Journal.open(NODE)
    written.started(7)
    written.finished(7, succeeded())
    monkeypatch.setattr(journal, "boot_id", lambda: "another-boot")
    replay = journal.read(NODE)
    assert set(replay.finished) == {7}
    assert not replay.complete


def test_a_failed_append_takes_away_the_proof_of_what_never_started(monkeypatch):
    written = Journal(journal.node_directory(NODE), segment_bytes=8)
    written.started(7)

    def full_disk(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "posix_fallocate", full_disk)
    assert written.started(80) is None  # needs a new segment, which the disk refuses
    assert written.started(9) is None  # and the journal stays off
    assert journal.read(NODE).complete is False


def test_it_skips_a_line_cut_short():
    written = Journal.open(NODE)
    written.finished(7, succeeded())
    with open(journal.node_directory(NODE) / segments()[0], "ab") as segment:
        segment.write(b'F 8 {"status":"succ')
    replay = journal.read(NODE)
    assert set(replay.finished) == {7}


# Segments ------------------------------------------------------------------------------------


def test_it_starts_a_new_segment_when_a_line_does_not_fit_and_deletes_one_once_committed():
    written = Journal(journal.node_directory(NODE), segment_bytes=10)
    first = written.started(1)  # 4 bytes
    second = written.started(2)  # 8 bytes
    third = written.started(30)  # 5 more would not fit
    assert (first, second, third) == (0, 0, 1)
    written.committed([first])
    assert segments() == ["00000000.log", "00000001.log"]  # one of its outcomes is still to commit
    written.committed([second])
    assert segments() == ["00000001.log"]
    assert journal.read(NODE).started == {30}


def test_a_line_longer_than_a_segment_gets_a_segment_of_its_own():
    written = Journal(journal.node_directory(NODE), segment_bytes=64)
    written.finished(7, succeeded(output="x" * 1000))
    written.started(8)
    assert journal.read(NODE).finished[7].output == "x" * 1000
    assert journal.read(NODE).started == {7, 8}


def test_it_reads_past_a_line_a_killed_thread_reserved_and_never_copied():
    written = Journal(journal.node_directory(NODE), segment_bytes=64)
    written.started(7)
    written._position += 5  # reserved by a thread killed before its copy: zeros
    written.started(8)
    assert journal.read(NODE).started == {7, 8}


def test_the_current_segment_stays_even_when_everything_in_it_is_committed():
    written = Journal.open(NODE)
    written.committed([written.started(1)])
    assert segments() == ["00000000.log"]


def test_the_writer_reports_what_it_committed_and_removes_the_journal_when_it_stops(make_job, make_execution):
    job = make_job()
    runs = [make_execution(job, status="queued", scheduled_for=NOON + timedelta(minutes=n)) for n in range(3)]
    written = Journal(journal.node_directory(NODE), segment_bytes=1)  # a segment per line
    writer = Writer(journal=written)
    for run in runs:
        segment = written.started(run.pk)
        writer.put(
            Outcome(execution_id=run.pk, from_statuses=("queued",), fields={"status": "running"}, segment=segment)
        )
    assert len(segments()) == 3
    writer.start()
    writer.stop()
    assert set(Execution.objects.values_list("status", flat=True)) == {"running"}
    assert not journal.node_directory(NODE).exists()


def test_a_run_is_journaled_before_the_writer_hears_of_it(make_job, make_execution):
    job = make_job(task="engine_tests.add", args=[2, 3])
    run = make_execution(job, status="queued", worker=NODE)
    writer = Writer(journal=Journal.open(NODE))  # not started: outcomes stay in its queue
    dispatcher = Dispatcher(node=NODE, writer=writer, max_workers=1)
    try:
        request = RunRequest.for_execution(Execution.objects.select_related("job").get(pk=run.pk))
        dispatcher.launch([(request, "start")])
        deadline = time.monotonic() + 5
        while run.pk not in journal.read(NODE).finished and time.monotonic() < deadline:
            time.sleep(0.01)
        replay = journal.read(NODE)
        assert replay.started == {run.pk}
        assert (replay.finished[run.pk].status, replay.finished[run.pk].result) == ("succeeded", 5)
        assert Execution.objects.get(pk=run.pk).status == "queued"  # the writer has written nothing yet
    finally:
        dispatcher.shutdown()
        writer.start()
        writer.stop()

"""The permission model's rules at the service layer (scheduler_app/permissions.py), where
every interface's request ends up. The route-by-route answers are in test_permission_matrix.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command

from scheduler_app import permissions, services
from scheduler_app.models import ApiToken, Job
from scheduler_app.permissions import Forbidden, JobAction
from tests.conftest import grant, member_of

pytestmark = pytest.mark.django_db

APP = Path(__file__).resolve().parent.parent / "scheduler_app"


def job_for(owner, name="owned", **fields):
    fields.setdefault("task", "tempora.sample_job")
    return services.job_create(
        name=name, owner=owner, triggers=[{"kind": "cron", "cron_expression": "0 9 * * *"}], **fields
    )


def test_is_staff_alone_gives_nothing_beyond_an_ordinary_users_rights(owner, bare_staff):
    job = job_for(owner)
    assert not Job.objects.visible_to(bare_staff).exists()
    for action in JobAction:
        assert not permissions.may(bare_staff, action, job)
    assert not permissions.may_control_scheduler(bare_staff)
    assert not permissions.may_view_nodes(bare_staff)


def test_an_owner_may_do_everything_to_their_own_job_and_nothing_to_anothers(owner, outsider):
    mine, theirs = job_for(owner), job_for(outsider, name="theirs")
    assert all(permissions.may(owner, action, mine) for action in JobAction)
    assert not any(permissions.may(owner, action, theirs) for action in JobAction)


@pytest.mark.parametrize("role", ["Tempora viewers", "Tempora operators", "Tempora editors", "Tempora admins"])
def test_the_shipped_groups_exist_after_migrate_with_their_permissions(role):
    group = Group.objects.get(name=role)
    codenames = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert codenames == set(permissions.ROLES[role])


def test_tempora_roles_resets_a_changed_group(capsys):
    group = Group.objects.get(name="Tempora viewers")
    group.permissions.clear()
    call_command("tempora_roles")  # without --reset a changed group is left alone
    assert group.permissions.count() == 0
    call_command("tempora_roles", "--reset")
    assert group.permissions.count() == len(permissions.ROLES["Tempora viewers"])
    assert "Tempora viewers (reset)" in capsys.readouterr().out


def test_a_bulk_pause_touching_one_job_the_user_may_not_change_changes_none_and_names_it(owner, outsider):
    viewer = member_of(outsider, "Tempora viewers")
    mine, theirs = job_for(viewer, name="mine"), job_for(owner, name="theirs")
    with pytest.raises(Forbidden) as refused:
        services.jobs_pause(jobs=Job.objects.filter(pk__in=[mine.pk, theirs.pk]), actor=viewer)
    assert "theirs" in refused.value.message and "mine" not in refused.value.message
    assert not Job.objects.filter(paused=True).exists()


def test_a_group_action_covers_the_group_the_actor_sees(owner, outsider):
    job_for(owner, name="a", group="etl")
    job_for(outsider, name="b", group="etl")
    assert services.group_pause(group="etl", actor=outsider) == 1
    assert set(Job.objects.filter(paused=True).values_list("name", flat=True)) == {"b"}


def test_a_task_with_a_permission_needs_it_to_be_scheduled(owner):
    with pytest.raises(ValidationError) as refused:
        services.job_create(
            name="fetch", task="tempora.http_request", kwargs={"url": "https://example.com/"}, actor=owner, triggers=[]
        )
    assert "task" in refused.value.message_dict
    assert "scheduler_app.use_network_tasks" in refused.value.message_dict["task"][0]
    allowed = grant(owner, "scheduler_app.use_network_tasks")
    job = services.job_create(
        name="fetch", task="tempora.http_request", kwargs={"url": "https://example.com/"}, actor=allowed, triggers=[]
    )
    assert job.owner == allowed


def test_an_admin_cannot_give_a_machine_task_to_an_owner_who_lacks_its_permission(owner, team_admin):
    with pytest.raises(ValidationError) as refused:
        services.job_create(name="backup", task="tempora.backup_database", owner=owner, actor=team_admin, triggers=[])
    assert "owner may not schedule" in refused.value.message_dict["task"][0]


def test_editing_a_job_whose_task_needs_a_permission_needs_it_too(owner, outsider):
    editor = member_of(outsider, "Tempora editors")
    backup = services.job_create(name="backup", task="tempora.backup_database", owner=None, triggers=[])
    with pytest.raises(ValidationError) as refused:
        services.job_update(job=backup, kwargs={"destination": "elsewhere"}, actor=editor)
    assert "task" in refused.value.message_dict


def test_the_task_list_leaves_out_tasks_the_user_may_not_schedule(owner, team_admin):
    assert "tempora.http_request" not in {info.name for info in permissions.tasks_for(owner)}
    assert "tempora.http_request" in {info.name for info in permissions.tasks_for(team_admin)}


def test_an_ordinary_user_may_not_give_a_job_to_someone_else(owner, outsider):
    with pytest.raises(ValidationError) as refused:
        services.job_create(name="gift", task="tempora.sample_job", owner=outsider, actor=owner, triggers=[])
    assert "owner" in refused.value.message_dict
    job = job_for(owner)
    with pytest.raises(ValidationError):
        services.job_update(job=job, owner=outsider, actor=owner)


def test_the_job_quota_counts_an_owners_jobs(owner, settings):
    settings.TEMPORA_MAX_JOBS_PER_USER = 2
    job_for(owner, name="one", actor=owner)
    job_for(owner, name="two", actor=owner)
    with pytest.raises(Forbidden) as refused:
        job_for(owner, name="three", actor=owner)
    assert "already owns 2 jobs" in refused.value.message
    assert Job.objects.count() == 2


def test_without_open_creation_creating_a_job_needs_add_job(owner, settings):
    settings.TEMPORA_OPEN_JOB_CREATION = False
    with pytest.raises(Forbidden):
        job_for(owner, actor=owner)
    allowed = grant(owner, "scheduler_app.add_job")
    assert job_for(allowed, actor=allowed).owner == allowed


def test_a_user_revokes_only_their_own_tokens_unless_allowed(owner, team_admin, bare_staff, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-123")
    token, _key = services.token_create(user=root, name="root's")
    for who in (owner, bare_staff):
        with pytest.raises(Forbidden):
            services.token_revoke(token=token, actor=who)
        assert not permissions.tokens_for(who, ApiToken.objects.all()).filter(pk=token.pk).exists()
    services.token_revoke(token=token, actor=team_admin)
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_shared_calendar_needs_add_calendar(owner, team_admin):
    with pytest.raises(ValidationError) as refused:
        services.calendar_create(name="bank holidays", owner=None, actor=owner)
    assert "owner" in refused.value.message_dict
    shared = services.calendar_create(name="bank holidays", owner=None, actor=team_admin)
    with pytest.raises(Forbidden):
        services.calendar_update(calendar=shared, description="mine now", actor=owner)


def test_another_users_calendar_is_no_calendar_to_a_trigger(owner, outsider):
    private = services.calendar_create(name="private", actor=outsider)
    with pytest.raises(ValidationError) as refused:
        services.job_create(
            name="j",
            task="tempora.sample_job",
            actor=owner,
            triggers=[{"kind": "daily", "at": "09:00", "calendar": private.pk}],
        )
    assert "triggers.0.calendar" in refused.value.message_dict


def _service_calls_without_actor(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "services"
        ):
            name = node.func.attr
            keywords = {keyword.arg for keyword in node.keywords}
            if name not in NO_ACTOR and "actor" not in keywords:
                yield f"{path.relative_to(APP.parent)}:{node.lineno} services.{name}"


# Service calls that act for nobody but the caller, or read: no actor to pass.
NO_ACTOR = {
    "token_create",
    "token_mark_used",
    "scheduler_setting",
    "scheduler_liveness",
    "RUNTIME_SETTINGS",
    "JOB_FIELDS",
}


def test_every_interface_passes_the_signed_in_user_to_the_services():
    """actor=None is the system itself: an interface that forgot the actor would act with
    every right. This keeps the console, both APIs and the admin honest."""
    offenders = [
        call
        for folder in ("api", "web", "admin")
        for path in sorted((APP / folder).rglob("*.py"))
        for call in _service_calls_without_actor(path)
    ]
    assert offenders == []


def test_a_run_whose_owner_lost_the_tasks_permission_is_refused(owner):
    allowed = grant(owner, "scheduler_app.use_network_tasks")
    assert permissions.run_refusal(allowed.pk, "tempora.http_request") == ""
    allowed.user_permissions.clear()
    reason = permissions.run_refusal(allowed.pk, "tempora.http_request")
    assert "may no longer schedule tempora.http_request" in reason
    # Tasks without a permission, and jobs without an owner (the system's), always run.
    assert permissions.run_refusal(allowed.pk, "tempora.sample_job") == ""
    assert permissions.run_refusal(None, "tempora.http_request") == ""


def test_running_a_machine_task_with_other_arguments_needs_its_permission_and_passes_its_fences(owner, outsider):
    operator = member_of(outsider, "Tempora operators")
    job = services.job_create(
        name="probe", task="tempora.http_request", kwargs={"url": "https://example.com/"}, triggers=[]
    )
    # The job's own arguments: an operator may run it as it is ...
    services.job_run_now(job=job, actor=operator)
    # ... but not point it somewhere else.
    with pytest.raises(Forbidden) as refused:
        services.job_run_now(job=job, kwargs={"url": "https://example.org/"}, actor=operator)
    assert "scheduler_app.use_network_tasks" in refused.value.message
    # Even the system may not send it to a loopback address: the task's own fences apply.
    with pytest.raises(ValidationError) as fenced:
        services.job_run_now(job=job, kwargs={"url": "http://127.0.0.1:6379/"})
    assert "loopback" in fenced.value.message_dict["kwargs"][0]
    assert job.executions.count() == 1

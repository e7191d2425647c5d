"""Heartbeats and the leader lease.

Every runscheduler process keeps a SchedulerNode row fresh. One of them holds the lease on
the single SchedulerState row, taken and renewed by conditional UPDATEs: a process is the
leader only if its UPDATE changed the row. A leader that cannot renew before its lease ends
steps down by itself, so at most one process schedules at a time in normal operation; the
unique Execution constraint covers the rest.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from django.db.models import Q

from scheduler_app.models import SchedulerNode, SchedulerState

logger = logging.getLogger(__name__)


def node_name(started_at: datetime) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{started_at:%H%M%S%f}"


def register(*, now: datetime) -> SchedulerNode:
    SchedulerState.load()  # make sure the lease row exists
    return SchedulerNode.objects.create(
        name=node_name(now), hostname=socket.gethostname(), pid=os.getpid(),
        started_at=now, last_beat_at=now, state=SchedulerNode.State.RUNNING,
    )


class Lease:
    def __init__(self, node: SchedulerNode, *, seconds: int) -> None:
        self.node = node
        self.seconds = seconds
        self.expires_at: datetime | None = None  # our own view: when we must stop leading

    @property
    def renew_every(self) -> float:
        return max(self.seconds / 3, 0.5)

    def is_leader(self, now: datetime) -> bool:
        return self.expires_at is not None and now < self.expires_at

    def beat(self, *, now: datetime) -> bool:
        """Refresh the heartbeat, then renew or take the lease. Answers: are we the leader?"""
        expires = now + timedelta(seconds=self.seconds)
        renewed = SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID, leader=self.node.name).update(
            lease_expires_at=expires
        )
        if not renewed:
            renewed = SchedulerState.objects.filter(
                Q(leader="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
                pk=SchedulerState.SINGLETON_ID,
            ).update(leader=self.node.name, lease_expires_at=expires)
            if renewed:
                logger.info("%s is now the leader", self.node.name)
        was_leader = self.expires_at is not None
        self.expires_at = expires if renewed else None
        if was_leader and not renewed:
            logger.warning("%s lost the lease and stands by", self.node.name)
        role = SchedulerNode.Role.LEADER if renewed else SchedulerNode.Role.STANDBY
        # state=running too: a node that could not beat for longer than the lease (a database
        # outage) was marked stopped by another node's recovery; left so, recovery would skip
        # it for good (it skips stopped nodes) once it really dies. Beats only happen while
        # the loop runs, never while draining.
        SchedulerNode.objects.filter(pk=self.node.pk).update(
            last_beat_at=now, role=role, state=SchedulerNode.State.RUNNING
        )
        self.node.role = role
        return bool(renewed)

    def release(self) -> None:
        SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID, leader=self.node.name).update(
            leader="", lease_expires_at=None
        )
        self.expires_at = None

    def lost(self) -> None:
        """Forget the lease locally (a database error: we cannot prove we still hold it)."""
        self.expires_at = None

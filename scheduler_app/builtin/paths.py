"""Names inside one directory, never outside it: the fence of the backup and data directories.

A name is relative and has no `..`; below the directory no symbolic link is followed. Each
component is opened with O_NOFOLLOW relative to its parent's descriptor, so a link swapped
in between a check and the open cannot lead outside either. The directory itself may be a
link: that is the operator's choice, not a job's.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from django.utils.translation import gettext

from scheduler_app.builtin import Refused

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def relative_parts(value: object, field: str, where: str) -> tuple[str, ...]:
    """`"nightly/db.sqlite3"` -> `("nightly", "db.sqlite3")`; Refused naming `field` for anything else.

    `where` names the directory in messages ("the backup directory").
    """
    if not isinstance(value, str) or "\x00" in value:
        raise Refused(
            gettext("%(field)s: %(value)r is not a file or directory name.") % {"field": field, "value": value}
        )
    if os.path.isabs(value):
        raise Refused(
            gettext("%(field)s: %(value)r must be a name relative to %(where)s, not an absolute path.")
            % {"field": field, "value": value, "where": where}
        )
    parts = tuple(part for part in value.split("/") if part not in ("", "."))
    if ".." in parts:
        raise Refused(
            gettext("%(field)s: %(value)r must stay inside %(where)s: '..' is not allowed.")
            % {"field": field, "value": value, "where": where}
        )
    return parts


class Blocked(OSError):
    """A component of the name is a symbolic link or not a directory: `part` says which."""

    def __init__(self, part: str, link: bool) -> None:
        super().__init__(errno.ELOOP if link else errno.ENOTDIR, part)
        self.part, self.link = part, link


def open_directory(base: Path, parts: tuple[str, ...], *, create: bool = False) -> int:
    """A descriptor of base/part/part/..., following no link below `base`; missing directories
    are made (mode 0700) when `create`. Blocked or another OSError when that cannot be done."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, _DIRECTORY, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                link = stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
                raise Blocked(part, link) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(base: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of the regular file base/parts for reading, following no link; OSError otherwise.

    O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a file).
    """
    directory = open_directory(base, parts[:-1])
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory)
    finally:
        os.close(directory)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, parts[-1])
    os.set_blocking(fd, True)
    return fd

"""The work behind Tempora's built-in tasks; scheduler_app/builtin_tasks.py names and registers them.

mail.py (tempora.send_email), backup.py (tempora.backup_database),
records.py (tempora.process_data), fetch.py (tempora.http_request). Each is fenced: network.py
decides which addresses may be reached, paths.py keeps files inside their directory, conf.py
reads the limits, checks.py reports a bad configuration at `manage.py check`.
"""


class Refused(ValueError):
    """A fence said no. The message starts with the argument it is about: `url: ...`.

    A ValueError, so a task's argument check at save time (registry `validate`) turns it into
    a 400 naming the field, and a run fails with it as its error.
    """

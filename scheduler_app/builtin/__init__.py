"""The work behind Tempora's built-in tasks; scheduler_app/builtin_tasks.py names and registers them.

mail.py (tempora.send_email), backup.py (tempora.backup_database),
records.py (tempora.process_data), fetch.py (tempora.http_request).
"""

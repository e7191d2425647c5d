"""The tasks that ship with Tempora."""

from scheduler_app.registry import task


@task(name="tempora.sample_job", description="Log a message and return it: a harmless job to try Tempora with.")
def sample_job(message: str = "Hello from Tempora") -> dict:
    return {"message": message}

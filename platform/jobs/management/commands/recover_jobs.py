"""Mark jobs left unfinished by a stopped single-machine setup as interrupted.

With the embedded broker (kombu's SQLAlchemy transport) a task taken by a worker that then
stops is never redelivered, so its job would stay "running" forever and block resubmission
(a queued or running job with the same key is reused). ``./bin/run`` calls this before it
starts the worker: no worker of this installation is alive then, so every unfinished job is
marked failed with a message saying why, and ``--purge`` empties the embedded queue so those
jobs are not started behind the user's back. Run them again from their pages or the API.
With Redis (production) nothing is needed: acks_late redelivers the task of a dead worker.
"""

from config.celery_app import app
from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.models import FINISHED_STATUSES, AnalysisJob, JobStatus

INTERRUPTED = "interrupted: CorreLi was stopped before this job finished; run it again"


class Command(BaseCommand):
    help = "Mark unfinished jobs as interrupted (single-machine restart) and optionally purge the queue."

    def add_arguments(self, parser):
        parser.add_argument(
            "--purge", action="store_true", help="also discard messages waiting in the broker"
        )

    def handle(self, *args, purge=False, **options):
        now = timezone.now()
        changed = AnalysisJob.objects.exclude(status__in=FINISHED_STATUSES).update(
            status=JobStatus.FAILED,
            error=INTERRUPTED,
            step="interrupted",
            finished_at=now,
            updated_at=now,
        )
        purged = app.control.purge() if purge else 0
        self.stdout.write(
            f"{changed} unfinished job(s) marked interrupted; {purged or 0} message(s) purged"
        )

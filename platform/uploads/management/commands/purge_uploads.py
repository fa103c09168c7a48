"""Delete unfinished uploads nobody has touched for a while (cron: daily)."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from uploads.services import purge_stale_uploads


class Command(BaseCommand):
    help = "Delete unfinished uploads (and their partial files) untouched for --days days."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=7.0)

    def handle(self, *args, days: float, **options):
        count = purge_stale_uploads(older_than=timedelta(days=days))
        self.stdout.write(f"purged {count} stale upload(s)")

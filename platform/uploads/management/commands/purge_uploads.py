"""Delete unfinished uploads nobody has touched for a while, and files on disk no row owns.

The periodic task ``uploads.tasks.purge_stale_uploads`` does the first part hourly; this
command also looks for orphans (files left by a crash, or by deletions from before files were
removed with their rows).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from projects import files

from uploads.services import purge_stale_uploads


class Command(BaseCommand):
    help = (
        "Delete unfinished uploads (and their partial files) untouched for --days days, and "
        "files under the storage roots that no dataset, job or upload owns."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=7.0)
        parser.add_argument(
            "--orphan-min-age-hours",
            type=float,
            default=1.0,
            help="only files untouched this long count as orphans (default 1)",
        )
        parser.add_argument("--dry-run", action="store_true", help="list orphans, remove nothing")

    def handle(self, *args, days: float, orphan_min_age_hours: float, dry_run: bool, **options):
        if not dry_run:
            count = purge_stale_uploads(older_than=timedelta(days=days))
            self.stdout.write(f"purged {count} stale upload(s)")
        orphans = files.find_orphans(min_age_s=orphan_min_age_hours * 3600)
        for path in orphans:
            self.stdout.write(f"orphan: {path}")
        if dry_run or not orphans:
            self.stdout.write(f"found {len(orphans)} orphaned path(s)")
            return
        outcome = files.remove_now(orphans, reason="orphaned files (purge_uploads)")
        self.stdout.write(
            f"removed {len(outcome['removed'])} orphaned path(s), {outcome['bytes']} bytes; "
            f"{len(outcome['failed'])} left for retry"
        )

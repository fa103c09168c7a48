"""Review links: a signed, expiring, revocable read-only link to one result or one report.

An owner gives a referee (who has no account) a link. Whoever holds it sees that one object
and nothing else: no catalogue, no other results, and only the downloads the owner ticked.
The link's token is a signature (``django.core.signing``, keyed by ``SECRET_KEY``) over the
link's id and a random nonce stored with it, so a token cannot be forged or guessed, and it
stops working when the link expires, is revoked or is deleted.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.db import models
from django.urls import reverse
from django.utils import timezone

SIGNING_SALT = "correli.reviews.link"


class ReviewTarget(models.TextChoices):
    RESULT = "result", "Result"
    CELL_REPORT = "cell_report", "Cell comparison report"
    SAMPLE_REPORT = "sample_report", "Sample comparison report"


# What a holder may download, per target; the owner ticks a subset.
DOWNLOADS = {
    ReviewTarget.RESULT: {"hdf5": "Result file (HDF5)", "summary": "Summary (JSON)"},
    ReviewTarget.CELL_REPORT: {"html": "Offline report (HTML)", "zip": "Report + CSV tables"},
    ReviewTarget.SAMPLE_REPORT: {"html": "Offline report (HTML)", "zip": "Report + CSV tables"},
}


def _nonce() -> str:
    return secrets.token_urlsafe(24)


class ReviewLink(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="review_links"
    )
    target = models.CharField(max_length=16, choices=ReviewTarget.choices)
    result = models.ForeignKey(
        "jobs.Result", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    cell = models.ForeignKey(
        "catalogue.Cell", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    sample = models.ForeignKey(
        "catalogue.Sample", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    downloads = models.JSONField(
        default=list, blank=True, help_text="The downloads the holder may make"
    )
    note = models.CharField(max_length=200, blank=True, help_text="Who it is for (e.g. referee 2)")
    nonce = models.CharField(max_length=64, default=_nonce, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        target="result",
                        result__isnull=False,
                        cell__isnull=True,
                        sample__isnull=True,
                    )
                    | models.Q(
                        target="cell_report",
                        result__isnull=True,
                        cell__isnull=False,
                        sample__isnull=True,
                    )
                    | models.Q(
                        target="sample_report",
                        result__isnull=True,
                        cell__isnull=True,
                        sample__isnull=False,
                    )
                ),
                name="review_link_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"review link #{self.pk} to {self.target_object}"

    @property
    def target_object(self):
        return {"result": self.result, "cell_report": self.cell, "sample_report": self.sample}[
            self.target
        ]

    @property
    def token(self) -> str:
        # no timestamp in the signature: the same link always has the same URL; expiry and
        # revocation are the row's
        return signing.Signer(salt=SIGNING_SALT).sign_object({"id": self.pk, "nonce": self.nonce})

    @property
    def path(self) -> str:
        return reverse("reviews:open", args=[self.token])

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > timezone.now() else "expired"

    def may_download(self, what: str) -> bool:
        return what in self.downloads and what in DOWNLOADS[self.target]

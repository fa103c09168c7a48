"""Analysis jobs, their results and the comments collaborators leave on results.

An :class:`AnalysisJob` records one run of one engine stage (or a whole-cell pipeline, whose
stages are child jobs). Its ``job_key`` is deterministic (kind + input checksums + canonical
parameters) so the same request returns the existing job unless a re-run is forced. A
:class:`Result` is what a succeeded stage leaves behind: the HDF5 output file, the summary JSON,
Plotly figure JSON and provenance.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class AnalysisJob(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="analysis_jobs"
    )
    kind = models.CharField(max_length=32, db_index=True)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True, default="")
    error = models.TextField(blank=True, default="")
    parameters = models.JSONField(default=dict, blank=True)
    inputs = models.ManyToManyField("catalogue.Dataset", blank=True, related_name="analysis_jobs")
    input_results = models.ManyToManyField("jobs.Result", blank=True, related_name="consumer_jobs")
    upstream = models.ManyToManyField(
        "self", blank=True, symmetrical=False, related_name="downstream"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    cell = models.ForeignKey(
        "catalogue.Cell", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    charge_state = models.ForeignKey(
        "catalogue.ChargeState", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    region = models.PositiveSmallIntegerField(null=True, blank=True)
    label = models.CharField(max_length=200, blank=True, default="")
    job_key = models.CharField(max_length=64, db_index=True)
    celery_task_id = models.CharField(max_length=255, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    # Stamped by the worker every CORRELI_JOB_HEARTBEAT_S while it runs the job; a running job
    # whose stamp grew old lost its worker (jobs.dispatch.recover_stale_jobs).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Fan-out plan of a chunked stage: {"chunks": [[a, b], ...], "options": {...}, ...}
    fanout = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "job_key"])]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:job-detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def result_upload_to(instance: Result, filename: str) -> str:
    return f"results/{instance.project_id}/{instance.job_id}/{filename}"


class Result(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="results"
    )
    job = models.ForeignKey(AnalysisJob, on_delete=models.CASCADE, related_name="results")
    kind = models.CharField(max_length=32, db_index=True)
    name = models.CharField(max_length=200, blank=True, default="")
    output_file = models.FileField(upload_to=result_upload_to, max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    size = models.BigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    cell = models.ForeignKey(
        "catalogue.Cell", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    charge_state = models.ForeignKey(
        "catalogue.ChargeState", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    region = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"{self.kind} result #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:result-detail", args=[self.pk])

    @property
    def figure_names(self) -> list[str]:
        return list(self.figures.keys())


class Comment(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="result_comments"
    )
    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment by {self.author} on {self.result}"

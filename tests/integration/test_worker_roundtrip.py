"""A real worker process takes a task from the broker, calls the analysis engine and stores
the result in the database that this test then reads."""

import hashlib

import numpy as np
import pytest
import tifffile
from catalogue.models import Dataset
from catalogue.tasks import inspect_dataset, verify_dataset_checksum
from django.core.files.base import ContentFile

from tests.web import factories as f

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _tiff_bytes(tmp_path, shape) -> bytes:
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, np.arange(np.prod(shape), dtype=np.uint16).reshape(shape))
    return path.read_bytes()


def test_worker_sniffs_and_hashes_a_dataset(celery_worker_process, tmp_path):
    project = f.make_project(f.make_user())
    content = _tiff_bytes(tmp_path, (6, 7))
    dataset = Dataset(project=project, name="projection.tif", kind="other", status="uploading")
    dataset.file.save("projection.tif", ContentFile(content), save=True)

    inspect_dataset.delay(dataset.pk)

    def finished():
        dataset.refresh_from_db()
        return dataset.status in ("ready", "rejected")

    celery_worker_process.wait_for(finished, timeout=90)
    assert dataset.status == "ready", dataset.status_message
    # analysis_engine.io.sniff recognised a 2-D TIFF as an image of that shape.
    assert dataset.kind == "image"
    assert dataset.metadata["shape"] == [6, 7] and dataset.metadata["dtype"] == "uint16"
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert dataset.size == len(content)
    assert "catalogue.inspect_dataset" in celery_worker_process.log()


def test_worker_detects_a_corrupted_file(celery_worker_process):
    project = f.make_project(f.make_user())
    dataset = f.make_dataset(project, content=b"original bytes")
    dataset.sha256 = hashlib.sha256(b"original bytes").hexdigest()
    dataset.save()
    with open(dataset.file.path, "wb") as fh:  # bit rot on disk
        fh.write(b"0riginal bytes")

    verify_dataset_checksum.delay(dataset.pk)

    def checked():
        dataset.refresh_from_db()
        return "checksum_ok" in dataset.metadata

    celery_worker_process.wait_for(checked, timeout=90)
    assert dataset.metadata["checksum_ok"] is False

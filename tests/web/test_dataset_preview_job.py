"""A dataset that becomes ready gets its preview computed by a background task and stored;
the dataset endpoint serves the stored one, computes on request when none is stored, and a
rewritten file is never answered with a stale preview.

Expected values: the EIS table is written here; the Nyquist trace must equal -Im Z of it.
"""

from __future__ import annotations

import numpy as np
import pytest
from catalogue.models import DatasetStatus
from django.core.files.storage import default_storage
from viewer import previews

from analysis_engine.io.tables import write_table

F_HZ = np.logspace(4, -1, 20)
Z = 3 + 40 / (1 + 1j * 2 * np.pi * F_HZ * 40 * 2e-5)


def _preview_jobs(callbacks) -> list:
    """The on-commit callbacks that enqueue a preview (the catalogue adds cache bumps)."""
    return [cb for cb in callbacks if cb.__qualname__.startswith("dataset_saved")]


@pytest.fixture
def eis_bytes(tmp_path):
    path = tmp_path / "eis.csv"
    write_table(path, {"frequency_hz": F_HZ, "z_real_ohm": Z.real, "z_imag_ohm": Z.imag})
    return path.read_bytes()


def test_ready_dataset_gets_a_stored_preview(
    project, owner, factories, eis_bytes, client_as, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ds = factories.make_dataset(
            project, content=eis_bytes, kind="eis", name="eis", status=DatasetStatus.VALIDATING
        )
    assert _preview_jobs(callbacks) == []  # not ready yet: no preview job
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ds.status = DatasetStatus.READY
        ds.save()
    assert len(_preview_jobs(callbacks)) == 1  # the task ran (eager) on commit
    stored = previews.stored_preview(ds)
    assert stored is not None and "stored_at" in stored
    np.testing.assert_allclose(stored["figures"]["nyquist"]["data"][0]["y"], -Z.imag, rtol=1e-8)

    body = client_as(owner).get(f"/viewer/datasets/{ds.pk}/preview/").json()
    assert body["stored"] is True
    np.testing.assert_allclose(body["figures"]["nyquist"]["data"][0]["y"], -Z.imag, rtol=1e-8)

    # saving again does not enqueue a second job: the stored preview is current
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ds.notes = "looked at it"
        ds.save()
    assert _preview_jobs(callbacks) == []


def test_unreadable_file_stores_its_message_and_the_page_shows_it(
    project, owner, factories, client_as, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        bad = factories.make_dataset(project, content=b"not,a,table\n1", kind="eis", name="bad")
    assert "error" in previews.stored_preview(bad)
    r = client_as(owner).get(f"/viewer/datasets/{bad.pk}/preview/")
    assert r.status_code == 422 and "could not be read" in r.json()["detail"]


def test_on_request_fallback_and_no_stale_preview(
    project, owner, factories, eis_bytes, client_as, tmp_path
):
    # created without running commit hooks (as a bulk import would): nothing stored
    ds = factories.make_dataset(project, content=eis_bytes, kind="eis", name="eis2")
    assert previews.stored_preview(ds) is None
    body = client_as(owner).get(f"/viewer/datasets/{ds.pk}/preview/").json()
    assert "stored" not in body and set(body["figures"]) == {"nyquist", "bode"}

    previews.store_preview(ds)
    old_name = previews.stored_preview_name(ds)
    assert default_storage.exists(old_name)
    # the file is replaced with a different spectrum: the stored preview no longer matches
    path = tmp_path / "eis_new.csv"
    write_table(path, {"frequency_hz": F_HZ, "z_real_ohm": 2 * Z.real, "z_imag_ohm": 2 * Z.imag})
    with open(ds.file.path, "wb") as fh:
        fh.write(path.read_bytes())
    assert previews.stored_preview(ds) is None
    body = client_as(owner).get(f"/viewer/datasets/{ds.pk}/preview/").json()
    np.testing.assert_allclose(body["figures"]["nyquist"]["data"][0]["y"], -2 * Z.imag, rtol=1e-8)
    previews.store_preview(ds)
    assert not default_storage.exists(old_name)  # the stale one is removed


def test_kinds_without_a_preview_and_missing_files_start_no_job(
    project, factories, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        factories.make_dataset(project, content=b"x", kind="other", name="o")
        factories.make_dataset(project, kind="eis", name="no file")
    assert _preview_jobs(callbacks) == []

"""End to end in real Chromium: open a reconstruction in the slice viewer, move the z slider,
open its segmentation and toggle the pore overlay, and check what the canvas shows by its
pixels: the grey values drawn must be the slice's voxels through the contrast window, the
new slice must differ from the old one, and the overlay must tint exactly the pore voxels.

Runs against pytest-django's live server with Chromium at /usr/bin/chromium (the fixtures
come from ``test_jobs_e2e``); no worker is needed, the results are recorded directly.
"""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest

from tests.e2e.test_jobs_e2e import _user, browser, login  # noqa: F401 - fixture reuse

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHAPE = (16, 64, 48)  # z, y, x
# voxel value x + 3 z: every slice a ramp along x, shifted by the slice index
VOLUME = (np.arange(SHAPE[2])[None, None, :] + 3 * np.arange(SHAPE[0])[:, None, None]) * np.ones(
    SHAPE
)
VOLUME = VOLUME.astype(np.float32)
PORES = np.zeros(SHAPE, np.uint8)
PORES[:, :, :20] = 1  # the left 20 columns are pore
TOP_ROWS = 40  # the scale bar and its label sit in the bottom-right corner


def _h5(datasets) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value, chunks=True)
    return buf.getvalue()


def _results(project):
    from django.core.files.base import ContentFile
    from jobs.models import AnalysisJob, JobStatus, Result

    made = {}
    for kind, content in (
        ("reconstruct", _h5({"/entry/reconstruction/data": VOLUME})),
        ("segment", _h5({"/pore_mask": PORES, "/electrode_mask": np.ones_like(PORES)})),
    ):
        job = AnalysisJob.objects.create(
            project=project, kind=kind, status=JobStatus.SUCCEEDED, job_key=f"e2e-{kind}"
        )
        res = Result(project=project, job=job, kind=kind)
        res.output_file.save(f"{kind}.h5", ContentFile(content), save=False)
        res.save()
        made[kind] = res
    made["segment"].job.input_results.add(made["reconstruct"])
    return made["reconstruct"], made["segment"]


def _loads(page, axis=0) -> int:
    value = page.get_attribute(f'canvas.slice[data-axis="{axis}"]', "data-loaded")
    return int(value or 0)


def _wait_loads(page, n, axis=0):
    page.wait_for_function(
        f"Number(document.querySelector('canvas.slice[data-axis=\"{axis}\"]').dataset.loaded"
        f" || 0) >= {n}",
        timeout=30_000,
    )


def _pixels(page, axis=0) -> np.ndarray:
    """RGBA of the canvas as drawn, (h, w, 4)."""
    h, w, data = page.evaluate(
        """(axis) => {
            const c = document.querySelector(`canvas.slice[data-axis="${axis}"]`);
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            return [c.height, c.width, Array.from(d)];
        }""",
        axis,
    )
    return np.asarray(data, dtype=np.int16).reshape(h, w, 4)


def _expected_grey(plane, page) -> np.ndarray:
    low = float(page.input_value("#win-low"))
    high = float(page.input_value("#win-high"))
    return np.clip((plane - low) / (high - low), 0, 1) * 255


def test_slider_and_overlay_change_the_image(live_server, browser, factories):  # noqa: F811
    owner = _user(factories, "vera")
    project = factories.make_project(owner, name="Viewer e2e")
    recon, seg = _results(project)
    page = login(browser, live_server, "vera")

    # the reconstruction opens at the middle slice, drawn through the auto contrast window
    page.goto(f"/viewer/results/{recon.pk}/")
    _wait_loads(page, 1)
    first = _pixels(page)
    assert first.shape == (SHAPE[1], SHAPE[2], 4)
    middle = SHAPE[0] // 2
    np.testing.assert_allclose(
        first[:TOP_ROWS, :, 0], _expected_grey(VOLUME[middle], page)[:TOP_ROWS], atol=3
    )
    assert page.inner_text(".pane-head .idx >> nth=0").startswith(f"{middle} /")

    # moving the z slider loads and draws another slice (same window: it looks darker)
    page.locator('input.slider[data-axis="0"]').fill("3")
    _wait_loads(page, 2)
    moved = _pixels(page)
    np.testing.assert_allclose(
        moved[:TOP_ROWS, :, 0], _expected_grey(VOLUME[3], page)[:TOP_ROWS], atol=3
    )
    assert np.abs(moved[:TOP_ROWS] - first[:TOP_ROWS]).mean() > 20
    assert (moved[:TOP_ROWS, :, 0] <= first[:TOP_ROWS, :, 0]).all()

    # the segmentation shows the same grey values; the pore overlay tints the pore columns only
    page.goto(f"/viewer/results/{seg.pk}/")
    _wait_loads(page, 1)
    before = _pixels(page)
    assert (before[:TOP_ROWS, :, 0] == before[:TOP_ROWS, :, 1]).all()  # grey: r == g
    loads = _loads(page)
    page.select_option("#overlay", "pore_mask")
    _wait_loads(page, loads + 1)
    after = _pixels(page)
    tint = after[:TOP_ROWS, :, 0] - after[:TOP_ROWS, :, 1]
    assert (tint[:, :20] > 50).all()  # pore: red over the grey
    assert (tint[:, 20:] == 0).all()  # solid: untouched
    np.testing.assert_array_equal(after[:TOP_ROWS, 20:], before[:TOP_ROWS, 20:])

    # and off again
    loads = _loads(page)
    page.select_option("#overlay", "")
    _wait_loads(page, loads + 1)
    np.testing.assert_array_equal(_pixels(page)[:TOP_ROWS], before[:TOP_ROWS])

    # the side planes load too (y and x), through the same endpoint
    for axis in (1, 2):
        _wait_loads(page, 1, axis)
        assert _pixels(page, axis).shape[:2] == tuple(n for i, n in enumerate(SHAPE) if i != axis)

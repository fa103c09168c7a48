"""Side planes (y, x) of a volume larger than the view come from a reduced copy built once in
one pass along z; the plane answered equals the 3D block mean computed here independently
(explicit loops over blocks), masks stay visible (block maximum), zoom windows still read the
file at full resolution, and storing a reconstruction result builds the copy in the
background."""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings
from viewer import services
from viewer.sources import source_for_result
from viewer.tasks import build_view_volumes

from tests.web.test_viewer import VOLUME, _h5_bytes, _plane, _result


def _block_reduce_loops(vol, s, how):
    z, y, x = vol.shape
    out = np.zeros((-(-z // s), -(-y // s), -(-x // s)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for k in range(out.shape[2]):
                block = vol[i * s : (i + 1) * s, j * s : (j + 1) * s, k * s : (k + 1) * s]
                out[i, j, k] = block.mean() if how == "mean" else block.max()
    return out


@pytest.fixture
def recon(project):
    return _result(project, "reconstruct", _h5_bytes({"/entry/reconstruction/data": VOLUME}))


@pytest.mark.parametrize("axis,index", [(1, 7), (1, 39), (2, 0), (2, 29)])
def test_downsampled_side_planes_are_block_means_of_the_volume(
    client_as, owner, recon, axis, index
):
    r = client_as(owner).get(f"/viewer/results/{recon.pk}/slice/?axis={axis}&index={index}&max=16")
    plane_shape = [n for i, n in enumerate(VOLUME.shape) if i != axis]
    step = -(-max(plane_shape) // 16)  # y plane (12, 30): 2; x plane (12, 40): 3
    assert r.status_code == 200 and r["X-Step"] == str(step)
    expected = np.take(
        _block_reduce_loops(VOLUME.astype(np.float64), step, "mean"), index // step, axis
    )
    np.testing.assert_allclose(_plane(r), expected, rtol=1e-5, atol=1e-6)
    spec = source_for_result(recon).layers["grey"]
    assert services._view_volume_path(spec, step).exists()
    assert not list((settings.MEDIA_ROOT / "viewer-cache").glob("*.lock"))


def test_zoom_window_reads_full_resolution(client_as, owner, recon):
    r = client_as(owner).get(f"/viewer/results/{recon.pk}/slice/?axis=2&index=5&window=2,10,4,30")
    assert r["X-Step"] == "1"
    np.testing.assert_array_equal(_plane(r), VOLUME[2:10, 4:30, 5])


def test_mask_side_planes_keep_pores_visible(client_as, owner, project, recon):
    pores = np.zeros(VOLUME.shape, np.uint8)
    pores[5, 20, 13] = 1  # one pore voxel
    seg = _result(project, "segment", _h5_bytes({"/pore_mask": pores}))
    r = client_as(owner).get(
        f"/viewer/results/{seg.pk}/slice/?layer=pore_mask&axis=1&index=21&max=16"
    )
    got = _plane(r)
    # y plane (12, 30) at max 16: step 2; y=21 shares the block of y=20
    assert got.dtype == np.uint8 and got.sum() == 1 and got[5 // 2, 13 // 2] == 1


def test_result_storage_builds_the_reduced_copy(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        recon = _result(project, "reconstruct", _h5_bytes({"/entry/reconstruction/data": VOLUME}))
    assert any(cb.__qualname__.startswith("result_saved") for cb in callbacks)
    spec = source_for_result(recon).layers["grey"]
    # at the default 512 px a 40-voxel volume needs no reduced copy: none was built
    assert services.side_plane_steps(spec.shape) == set()
    assert build_view_volumes("results", recon.pk) == 0
    assert build_view_volumes("results", recon.pk, max_pixels=16) == 2  # steps 2 (y), 3 (x)
    assert services._view_volume_path(spec, 3).exists()
    assert build_view_volumes("results", 10**9) == 0  # gone: nothing to do

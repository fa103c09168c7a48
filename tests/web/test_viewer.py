"""Slice viewer endpoints: the right plane (checked against h5py reading the file), 400 on bad
indices, 404 across projects; dataset previews and their error message."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
from django.core.files.base import ContentFile
from jobs.models import AnalysisJob, JobStatus, Result

from analysis_engine.io.nxtomo import write_nxtomo
from analysis_engine.io.tables import write_table

RNG = np.random.default_rng(3)
VOLUME = RNG.normal(size=(12, 40, 30)).astype(np.float32)


def _h5_bytes(datasets, attrs=None) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value, chunks=True)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return buf.getvalue()


def _result(project, kind, content, **extra):
    job = AnalysisJob.objects.create(
        project=project, kind=kind, status=JobStatus.SUCCEEDED, job_key=f"k-{kind}"
    )
    res = Result(project=project, job=job, kind=kind, **extra)
    res.output_file.save(f"{kind}.h5", ContentFile(content), save=False)
    res.save()
    return res


@pytest.fixture
def recon(project):
    content = _h5_bytes({"/entry/reconstruction/data": VOLUME})
    res = _result(project, "reconstruct", content)
    with h5py.File(res.output_file.path, "r+") as f:
        f["/entry/reconstruction/data"].attrs["voxel_size_um"] = 7.91
    return res


def _plane(response):
    h, w = (int(v) for v in response["X-Shape"].split(","))
    dtype = np.uint8 if response["X-Dtype"] == "uint8" else np.dtype("<f4")
    return np.frombuffer(response.content, dtype=dtype).reshape(h, w)


def _block_mean(a, s):
    # expected downsampling, written independently of the engine: pad with NaN, nanmean
    h, w = a.shape
    hb, wb = -(-h // s), -(-w // s)
    p = np.full((hb * s, wb * s), np.nan)
    p[:h, :w] = a
    return np.nanmean(p.reshape(hb, s, wb, s), axis=(1, 3))


@pytest.mark.parametrize("axis,index", [(0, 0), (0, 11), (1, 7), (2, 29)])
def test_slice_matches_the_file(client_as, owner, recon, axis, index):
    r = client_as(owner).get(f"/viewer/results/{recon.pk}/slice/?axis={axis}&index={index}")
    assert r.status_code == 200
    with h5py.File(recon.output_file.path, "r") as f:
        expected = np.take(f["/entry/reconstruction/data"][()], index, axis=axis)
    np.testing.assert_array_equal(_plane(r), expected)
    assert r["X-Step"] == "1"


def test_downsampled_and_windowed_slice(client_as, owner, recon):
    c = client_as(owner)
    r = c.get(f"/viewer/results/{recon.pk}/slice/?axis=0&index=4&max=16")
    assert r["X-Step"] == "3"  # ceil(40 / 16)
    np.testing.assert_allclose(_plane(r), _block_mean(VOLUME[4], 3), rtol=1e-6)
    r = c.get(f"/viewer/results/{recon.pk}/slice/?axis=0&index=4&window=5,25,3,13")
    np.testing.assert_array_equal(_plane(r), VOLUME[4, 5:25, 3:13])
    assert r["X-Origin"] == "5,3"


@pytest.mark.parametrize(
    "query,message",
    [
        ("axis=0&index=12", "outside 0..11"),
        ("axis=1&index=-1", "outside 0..39"),
        ("axis=0&index=2.5", "must be integers"),
        ("axis=3&index=0", "axis must be 0, 1 or 2"),
        ("axis=0&index=0&layer=pore_mask", "no layer"),
        ("axis=0&index=0&window=5,2,0,3", "row1 > row0"),
    ],
)
def test_bad_slice_requests_answer_400(client_as, owner, recon, query, message):
    r = client_as(owner).get(f"/viewer/results/{recon.pk}/slice/?{query}")
    assert r.status_code == 400
    assert message in r.json()["detail"]


def test_other_projects_answer_404(client_as, outsider, recon):
    c = client_as(outsider)
    for url in ("", "meta/", "slice/?axis=0&index=0"):
        assert c.get(f"/viewer/results/{recon.pk}/{url}").status_code == 404


def test_segmentation_overlay_and_regions(client_as, owner, project, recon):
    pores = (VOLUME > 0.5).astype(np.uint8)
    content = _h5_bytes({"/pore_mask": pores, "/electrode_mask": np.ones_like(pores)})
    seg = _result(
        project, "segment", content, summary={"region_bounds": [0, 4, 8, 12], "thickness_axis": 0}
    )
    seg.job.input_results.add(recon)
    c = client_as(owner)
    meta = c.get(f"/viewer/results/{seg.pk}/meta/").json()
    assert set(meta["layers"]) == {"grey", "pore_mask", "electrode_mask"}
    assert meta["regions"] == {"axis": 0, "bounds": [0, 4, 8, 12]}
    assert meta["voxel_size_um"] == pytest.approx(7.91)
    r = c.get(f"/viewer/results/{seg.pk}/slice/?layer=pore_mask&axis=1&index=3")
    np.testing.assert_array_equal(_plane(r), pores[:, 3, :])
    r = c.get(f"/viewer/results/{seg.pk}/slice/?layer=grey&axis=2&index=3")
    np.testing.assert_array_equal(_plane(r), VOLUME[:, :, 3])
    page = c.get(f"/viewer/results/{seg.pk}/")
    assert page.status_code == 200 and b'id="viewer-meta"' in page.content


def _nxtomo_dataset(factories, project, tmp_path):
    n_proj, rows, cols = 90, 6, 32
    angles = np.linspace(0, 180, n_proj, endpoint=False)
    yy = np.arange(cols) - (cols - 1) / 2
    # a centred disc: line integral 2 sqrt(r^2 - t^2), the same at every angle
    li = 2 * np.sqrt(np.clip(8.0**2 - yy**2, 0, None)) * 0.02
    proj = np.broadcast_to(1000 * np.exp(-li), (n_proj, rows, cols)).astype(np.float32)
    flats = np.full((2, rows, cols), 1000, np.float32)
    darks = np.zeros((1, rows, cols), np.float32)
    data = np.concatenate([darks, flats, proj])
    keys = np.r_[[2], [1, 1], np.zeros(n_proj, int)]
    all_angles = np.r_[[0.0], [0.0, 0.0], angles]
    path = tmp_path / "scan.nxs"
    write_nxtomo(path, data, keys, all_angles)
    return factories.make_dataset(
        project, content=path.read_bytes(), kind="xct_projections", name="scan"
    ), data


def test_nxtomo_views_and_centre_of_rotation(client_as, owner, project, factories, tmp_path):
    ds, data = _nxtomo_dataset(factories, project, tmp_path)
    c = client_as(owner)
    meta = c.get(f"/viewer/datasets/{ds.pk}/meta/").json()
    assert meta["nxtomo"]["projections"] == 90 and meta["nxtomo"]["flats"] == 2
    r = c.get(f"/viewer/datasets/{ds.pk}/slice/?layer=projection&index=5")
    np.testing.assert_array_equal(_plane(r), data[3 + 5])
    r = c.get(f"/viewer/datasets/{ds.pk}/slice/?layer=sinogram&index=2")
    np.testing.assert_array_equal(_plane(r), data[3:, 2, :])
    r = c.get(f"/viewer/datasets/{ds.pk}/slice/?layer=flat")
    np.testing.assert_allclose(_plane(r), 1000)
    assert c.get(f"/viewer/datasets/{ds.pk}/slice/?layer=projection&index=90").status_code == 400
    r = c.get(f"/viewer/datasets/{ds.pk}/cor/?row=2&count=3&spacing=3")
    assert r.status_code == 200
    k, h, w = (int(v) for v in r["X-Shape"].split(","))
    images = np.frombuffer(r.content, "<f4").reshape(k, h, w)
    assert r["X-Centers"] == "12.50,15.50,18.50"
    # the true centre (15.5) gives the flattest disc interior: mu = 0.02 per pixel inside r < 5
    yy, xx = np.mgrid[:h, :w] - (h - 1) / 2
    inside = yy**2 + xx**2 < 5**2
    spread = [images[i][inside].std() for i in range(k)]
    assert np.argmin(spread) == 1
    assert images[1][inside].mean() == pytest.approx(0.02, rel=0.1)


def test_dataset_previews(client_as, owner, project, factories, tmp_path):
    f = np.logspace(4, -1, 20)
    z = 3 + 40 / (1 + 1j * 2 * np.pi * f * 40 * 2e-5)
    write_table(
        tmp_path / "eis.csv", {"frequency_hz": f, "z_real_ohm": z.real, "z_imag_ohm": z.imag}
    )
    eis = factories.make_dataset(
        project, content=(tmp_path / "eis.csv").read_bytes(), kind="eis", name="eis"
    )
    c = client_as(owner)
    body = c.get(f"/viewer/datasets/{eis.pk}/preview/").json()
    assert set(body["figures"]) == {"nyquist", "bode"}
    nyq = body["figures"]["nyquist"]["data"][0]
    np.testing.assert_allclose(nyq["y"], -z.imag, rtol=1e-8)
    broken = factories.make_dataset(project, content=b"not,a,table\n1", kind="eis", name="bad")
    r = c.get(f"/viewer/datasets/{broken.pk}/preview/")
    assert r.status_code == 422 and "could not be read" in r.json()["detail"]
    assert client_as(owner).get(f"/viewer/datasets/{broken.pk}/").status_code == 200

"""Paper-geometry scan generator (analysis_engine.synthetic.paper_scan) and its streaming writer.

Known answers: the scan's geometry is read back with the NXtomo reader; the reconstruction of
the half-acquisition scan (stitched, direct FBP) must show the closed-form attenuation of the
matrix and the porosity that the pore spheres imply (sum of the discs they cut, pi (r^2 - dz^2),
over the cylinder's area), and the axis found automatically must be the one the geometry put.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.spatial import cKDTree

from analysis_engine.cli import main as engine_main
from analysis_engine.errors import EngineInputError
from analysis_engine.io.nxtomo import read_nxtomo_info, read_reconstruction
from analysis_engine.io.nxtomo_stream import NXtomoStreamWriter
from analysis_engine.synthetic.paper_scan import (
    paper_scan_geometry,
    pore_spheres,
    write_paper_scan,
)
from analysis_engine.tomo.commands import run_reconstruct

MU_SOLID, MU_PORE = 4e-3, 1e-3


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("paper") / "scan.nxs"
    truth = write_paper_scan(
        path,
        slices=3,
        detector_cols=256,
        mu_solid_per_px=MU_SOLID,
        mu_pore_per_px=MU_PORE,
        band_rows=2,
        seed=4,
    )
    return path, truth


def test_geometry_is_the_papers(scan):
    path, truth = scan
    info = read_nxtomo_info(path)
    assert info.n_projections == 3600
    assert info.scan_range_deg == 360
    assert (info.n_rows, info.n_cols) == (3, 256)
    assert np.allclose(np.diff(np.sort(info.angles_deg)), 0.1)
    # the axis sits near the right edge: a 360 deg scan to stitch (double field of view)
    assert truth["center_of_rotation"] == pytest.approx(255 - 64 + 0.5)
    with h5py.File(path) as f:
        chunks = f["/entry/data/data"].chunks
    assert chunks == (32, 2, 256)  # bands of rows: a sinogram reader touches only its rows


def test_porosity_from_spheres_matches_monte_carlo():
    geometry = paper_scan_geometry(detector_cols=512, slices=6)
    spheres = pore_spheres(geometry, seed=1)
    # no two pores overlap (so the chords add up to the pore volume)
    pairs = cKDTree(spheres[:, :3]).query_pairs(2 * spheres[:, 3].max())
    for i, j in pairs:
        assert np.linalg.norm(spheres[i, :3] - spheres[j, :3]) > spheres[i, 3] + spheres[j, 3]
    # area of pores cut by slice z = 2, by random points (independent of the disc formula)
    rng = np.random.default_rng(0)
    radius = geometry.sample_radius
    points = rng.uniform(-radius, radius, size=(200_000, 2))
    points = points[np.hypot(points[:, 0], points[:, 1]) < radius]
    inside = np.zeros(len(points), bool)
    tree = cKDTree(points)
    for x, y, z, r in spheres:
        if abs(z - 2) < r:
            inside[tree.query_ball_point((x, y), np.sqrt(r**2 - (z - 2) ** 2))] = True
    dz = spheres[:, 2] - 2
    r2 = np.clip(spheres[:, 3] ** 2 - dz**2, 0, None)
    analytic = np.pi * r2.sum() / (np.pi * radius**2)
    assert inside.mean() == pytest.approx(analytic, abs=0.01)
    assert 0.15 < analytic < 0.4


def test_reconstruction_shows_matrix_and_porosity(scan, tmp_path):
    path, truth = scan
    out = tmp_path / "rec.h5"
    summary = run_reconstruct(path, out, center="auto", half_acquisition=True, backend="fourier")
    assert summary["center_of_rotation"] == pytest.approx(truth["center_of_rotation"], abs=1.0)
    volume = read_reconstruction(out)
    size = volume.shape[-1]
    assert abs(size - truth["stitched_width"]) <= 1  # the axis is found to a pixel
    mid = (size - 1) / 2
    y, x = np.ogrid[:size, :size]
    inside = (x - mid) ** 2 + (y - mid) ** 2 < (truth["sample_radius_px"] - 4) ** 2
    values = volume[:, inside]
    pores = values < 0.5 * (MU_SOLID + MU_PORE)
    assert np.median(values[~pores]) == pytest.approx(MU_SOLID, rel=0.05)
    assert np.median(values[pores]) == pytest.approx(MU_PORE, abs=0.1 * MU_SOLID)
    assert pores.mean() == pytest.approx(truth["porosity"], abs=0.03)


def test_demo_data_full_writes_scan_and_truth(tmp_path, capsys):
    code = engine_main(
        ["demo-data", str(tmp_path), "--size", "full", "--slices", "2", "--detector-cols", "256"]
    )
    assert code in (0, None)
    info = read_nxtomo_info(tmp_path / "xct" / "paper_scan.nxs")
    assert (info.n_projections, info.n_rows, info.n_cols) == (3600, 2, 256)
    assert (tmp_path / "ground_truth.json").exists()


def test_stream_writer_leaves_nothing_when_rows_are_missing(tmp_path):
    target = tmp_path / "partial.nxs"
    key = np.zeros(4, int)
    with pytest.raises(ValueError, match="row 2 never written"):
        with NXtomoStreamWriter(target, key, np.arange(4.0), rows=4, cols=8) as out:
            out.write_rows(0, np.ones((4, 2, 8)))
    assert not target.exists()
    assert not list(tmp_path.iterdir())


def test_reconstruction_larger_than_free_space_is_refused_before_work(tmp_path):
    # an NXtomo file that declares 20000 rows x 6000 columns (storage never allocated, so the
    # file is tiny): its reconstruction would be 20000 x 6000^2 float32 = 2.9 TB
    scan = tmp_path / "huge.nxs"
    n = 8
    with h5py.File(scan, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("definition", data="NXtomo")
        data = entry.create_group("data")
        data.create_dataset("data", shape=(n, 20000, 6000), dtype=np.uint16, chunks=(1, 8, 6000))
        data.create_dataset("image_key", data=np.array([1, 1] + [0] * (n - 2), np.int32))
        data.create_dataset("rotation_angle", data=np.r_[0, 0, np.linspace(0, 180, n - 2)])
    assert scan.stat().st_size < 1e6
    out = tmp_path / "rec.h5"
    with pytest.raises(EngineInputError, match=r"needs 2880\.0 GB but only .* GB are free"):
        run_reconstruct(scan, out, center=3000.0)
    assert not out.exists()

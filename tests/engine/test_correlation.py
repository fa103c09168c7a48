"""Correlation of Li stoichiometry with porosity, the whole-cell table, and the CLI (issue 8)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy import ndimage

from analysis_engine.cli import main
from analysis_engine.correlation import (
    cell_correlation_summary,
    correlate_maps,
    correlation_figure,
    li_gradient_pct,
    overlay,
)
from analysis_engine.correlation.commands import run_correlate
from analysis_engine.errors import EngineInputError
from analysis_engine.registration import SimilarityTransform2D, apply_transform, region_maps
from analysis_engine.registration.commands import run_register


def _planted(seed=0, slope=0.5, noise=0.02, shape=(80, 80)):
    rng = np.random.default_rng(seed)
    porosity = 0.1 + 0.25 * rng.random(shape)
    li = 0.6 + slope * (porosity - 0.2) + rng.normal(0, noise, shape)
    mask = np.hypot(*np.mgrid[-40:40, -40:40]) < 35
    return np.where(mask, porosity, np.nan), np.where(mask, li, np.nan)


def test_planted_correlation_recovered():
    porosity, li = _planted()
    result = correlate_maps(porosity, li, n_bins=6)
    # Expected r from the construction: slope * sd(x) / sqrt(slope^2 var(x) + noise^2).
    sd_x = 0.25 / np.sqrt(12)
    expected_r = 0.5 * sd_x / np.sqrt(0.25 * sd_x**2 + 0.02**2)
    assert result.n == int(np.isfinite(li).sum())
    assert result.pearson_r == pytest.approx(expected_r, abs=0.02)
    assert result.spearman_rho == pytest.approx(expected_r, abs=0.03)
    assert result.pearson_p < 1e-100 and result.spearman_p < 1e-100
    assert result.slope == pytest.approx(0.5, abs=0.02)
    # The binned trend follows the planted line inside its 95 % intervals.
    trend = result.trend
    assert sum(trend["count"]) == result.n
    line = [0.6 + 0.5 * (x - 0.2) for x in trend["x_center"]]
    inside = [
        lo <= v <= hi for lo, v, hi in zip(trend["y_low"], line, trend["y_high"], strict=True)
    ]
    assert sum(inside) >= 5
    assert np.sum(result.density["counts"]) == result.n


def test_no_correlation_and_negative_correlation():
    porosity, _ = _planted(1)
    li = np.where(
        np.isfinite(porosity), np.random.default_rng(9).normal(0.7, 0.05, porosity.shape), np.nan
    )
    none = correlate_maps(porosity, li)
    assert abs(none.pearson_r) < 0.06 and none.pearson_p > 0.01
    negative = correlate_maps(*_planted(2, slope=-0.8))
    assert negative.pearson_r < -0.9 and negative.spearman_rho < -0.9


def test_overlay_and_bad_correlation_input():
    porosity, li = _planted()
    over = overlay(np.nan_to_num(porosity, nan=0.3), li)
    assert np.array_equal(np.isfinite(over), np.isfinite(li))
    with pytest.raises(EngineInputError, match="same grid"):
        overlay(porosity[:-1], li)
    with pytest.raises(EngineInputError, match="do not overlap"):
        correlate_maps(np.where(np.isfinite(li), np.nan, 0.2), li)
    with pytest.raises(EngineInputError, match="constant"):
        correlate_maps(np.where(np.isfinite(li), 0.2, np.nan), li)


def test_li_gradient_matches_paper_table_2():
    # Discharged DIT cathode, 1 - x = 0.76 / 0.73 / 0.61: the paper's "3 %" and "16 %" drops.
    drops = li_gradient_pct([0.76, 0.73, 0.61])
    assert drops == pytest.approx([-3.947, -16.438], abs=1e-3)
    assert li_gradient_pct([0.76, 0.73, 0.61], relative_to="first")[1] == pytest.approx(
        -15.789, abs=1e-3
    )
    with pytest.raises(EngineInputError):
        li_gradient_pct([0.7])


TABLE_1 = [  # region, eps, tau x-y, tau y-z, D x-y, D y-z (1e-9 cm^2/s)
    (1, 0.333, 8.7, 1.1, 5.3e-9, 42.1e-9),
    (2, 0.232, 10.5, 2.3, 3.1e-9, 14.0e-9),
    (3, 0.096, 11.2, 2.8, 1.2e-9, 4.8e-9),
]


def test_cell_correlation_summary_with_paper_tables():
    transport = []
    for region, eps, tau_xy, tau_yz, d_xy, d_yz in TABLE_1:
        transport.append(
            {"region": region, "direction": "x-y", "porosity": eps, "tau": tau_xy,
             "d_directional_cm2_s": d_xy}
        )  # fmt: skip
        transport.append(
            {"region": region, "direction": "y-z", "porosity": eps, "tau": tau_yz,
             "d_directional_cm2_s": d_yz}
        )  # fmt: skip
    s = {"charged": {1: 0.88, 2: 0.72, 3: 0.65}, "discharged": {"1": 2.40, "2": 2.34, "3": 2.06}}
    li = {"charged": {1: 0.10, 2: 0.03, 3: 0.00}, "discharged": {1: 0.76, 2: 0.73, 3: 0.61}}
    rows = cell_correlation_summary(transport, s, li)
    json.dumps(rows)  # the report stores and displays it as JSON
    regions = [r for r in rows if r["kind"] == "region"]
    assert [r["region"] for r in regions] == [1, 2, 3]
    assert regions[0]["porosity"] == 0.333 and regions[2]["tau_y-z"] == 2.8
    assert regions[1]["d_directional_cm2_s_x-y"] == 3.1e-9
    assert regions[0]["s_discharged"] == 2.40 and regions[2]["li_charged"] == 0.0
    assert regions[0]["li_change_pct_discharged"] is None
    assert regions[1]["li_change_pct_discharged"] == pytest.approx(-3.947, abs=1e-3)
    assert regions[2]["li_change_pct_discharged"] == pytest.approx(-16.438, abs=1e-3)
    corr = {(r["x"], r["y"]): r for r in rows if r["kind"] == "correlation"}
    eps = [0.333, 0.232, 0.096]
    expected = np.corrcoef(eps, [0.76, 0.73, 0.61])[0, 1]
    assert corr[("porosity", "li_discharged")]["pearson_r"] == pytest.approx(expected, abs=1e-12)
    # Higher porosity, lower tau y-z, higher D y-z go with more Li: the paper's rationale.
    assert corr[("porosity", "li_discharged")]["spearman_rho"] == pytest.approx(1.0)
    assert corr[("tau_y-z", "li_discharged")]["spearman_rho"] == pytest.approx(-1.0)
    assert corr[("d_directional_cm2_s_y-z", "li_charged")]["spearman_rho"] == pytest.approx(1.0)
    with pytest.raises(EngineInputError, match="lacks"):
        cell_correlation_summary([{"region": 1}], s, li)
    # A non-percolating slab (tau = inf from the transport stage) stays JSON-able.
    blocked = {"region": 3, "direction": "in-plane", "porosity": 0.02, "tau": float("inf"),
               "d_directional_cm2_s": 0.0}  # fmt: skip
    rows = cell_correlation_summary([*transport, blocked], s, li)
    json.dumps(rows, allow_nan=False)
    assert rows[2]["tau_in-plane"] is None


def test_correlation_figure_is_plotly_json():
    fig = correlation_figure(correlate_maps(*_planted()))
    text = json.dumps(fig)
    assert "NaN" not in text
    assert [t["type"] for t in fig["data"]] == ["heatmap", "scatter", "scatter", "scatter"]


# --------------------------------------------------------------------------------------------
# end to end: segmented XCT volume + 3 Compton maps -> correlate; register CLI


VOXEL_UM = 67.5  # 4 voxels per 270 um Compton pixel keeps the test volume small
TRUE_SHIFT = (3.0, -2.0)
TRUE_ROTATION = 2.0


def _segmented_cell(seed=0):
    rng = np.random.default_rng(seed)
    shape = (24, 184, 184)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), (2, 7, 7))
    noise /= noise.std()
    yy, xx = np.mgrid[0 : shape[1], 0 : shape[2]]
    disc = np.hypot(yy - 91.5, xx - 91.5) < 80
    electrode = np.broadcast_to(disc, shape).astype(np.uint8)
    depth = np.linspace(0.5, -0.8, shape[0])[:, None, None]  # porosity falls with depth
    pore = ((noise + depth) > 0.2).astype(np.uint8) & electrode
    return pore, electrode


def _compton_files(tmp_path, pore, electrode):
    maps = region_maps(pore, electrode, voxel_size_um=VOXEL_UM, n_regions=3)
    truth = SimilarityTransform2D(TRUE_SHIFT, TRUE_ROTATION, 1.0)
    rng = np.random.default_rng(5)
    paths = []
    for k in range(3):
        density = apply_transform(maps.material_density[k], (80, 80), truth, order=3)
        porosity = apply_transform(maps.porosity[k], (80, 80), truth, order=1)
        inside = np.isfinite(density) & (density > 0.2) & np.isfinite(porosity)
        counts = rng.poisson(np.clip(np.nan_to_num(density), 0, None) * 3000).astype(float)
        li = 0.75 - 0.05 * k + 0.6 * (porosity - 0.3) + rng.normal(0, 0.01, counts.shape)
        path = tmp_path / f"compton_region{k + 1}.h5"
        with h5py.File(path, "w") as f:
            f["/compton_counts"] = np.where(inside, counts, np.nan)
            f["/li_stoichiometry"] = np.where(inside, li, np.nan)
        paths.append(path)
    return maps, paths


def test_run_correlate_recovers_transform_and_planted_trend(tmp_path):
    pore, electrode = _segmented_cell()
    xct = tmp_path / "segmented.h5"
    with h5py.File(xct, "w") as f:
        f["/pore_mask"], f["/electrode_mask"] = pore, electrode
        f.attrs["voxel_size_um"] = VOXEL_UM
    maps, paths = _compton_files(tmp_path, pore, electrode)
    out = tmp_path / "correlation.h5"
    messages = []
    summary = run_correlate(
        xct, paths, out, allow_scale=False, progress=lambda f, m: messages.append(f)
    )
    assert messages[-1] == 1.0
    assert len(summary["regions"]) == 3
    for k, region in enumerate(summary["regions"]):
        assert np.hypot(*np.subtract(region["shift_px"], TRUE_SHIFT)) < 0.15
        assert region["rotation_deg"] == pytest.approx(TRUE_ROTATION, abs=0.3)
        assert region["quality"] > 0.5
        assert region["pearson_r"] > 0.9  # planted: Li = a + 0.6 porosity + 1 % noise
        assert region["slope"] == pytest.approx(0.6, abs=0.08)
        assert region["xct_porosity"] == pytest.approx(maps.porosity_by_region[k], rel=1e-12)
    li_means = [r["li_mean"] for r in summary["regions"]]
    assert summary["li_gradient_pct"] == pytest.approx(li_gradient_pct(li_means))
    with h5py.File(out) as f:
        assert f["/region_1/porosity"].shape == (80, 80)
        assert f["/region_2/pairs"].shape == (summary["regions"][1]["n"], 2)
        assert f["/region_3/transform"].shape == (3, 3)
        assert f["/li_gradient_pct"].shape == (2,)

    # Same through the CLI, with the voxel size missing from a copy of the file: exit 2.
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        f["/pore_mask"], f["/electrode_mask"] = pore, electrode
    code = main(["correlate", str(bare), *map(str, paths), "-o", str(tmp_path / "x.h5")])
    assert code == 2
    assert not (tmp_path / "x.h5").exists()


def test_run_correlate_writes_the_registered_cathode_footprint(tmp_path):
    """The footprint of the electrode disc (radius 80 voxels = 20 Compton pixels, centred on
    the XCT map) lands where the planted transform puts the disc centre: (39.5, 39.5) + shift."""
    pore, electrode = _segmented_cell()
    xct = tmp_path / "segmented.h5"
    with h5py.File(xct, "w") as f:
        f["/pore_mask"], f["/electrode_mask"] = pore, electrode
        f.attrs["voxel_size_um"] = VOXEL_UM
    _, paths = _compton_files(tmp_path, pore, electrode)
    out = tmp_path / "correlation.h5"
    summary = run_correlate(xct, paths, out, allow_scale=False)
    yy, xx = np.mgrid[0:80, 0:80]
    distance = np.hypot(yy - 39.5 - TRUE_SHIFT[0], xx - 39.5 - TRUE_SHIFT[1])
    clear = np.abs(distance - 20.0) > 1.0  # pixels not cut by the disc edge
    with h5py.File(out) as f:
        for k, region in enumerate(summary["regions"], start=1):
            mask = f[f"/region_{k}/cathode_mask"][()]
            assert mask.dtype == np.uint8 and mask.shape == (80, 80)
            np.testing.assert_array_equal(mask[clear] == 1, (distance < 20.0)[clear])
            assert mask.sum() == pytest.approx(np.pi * 20.0**2, rel=0.03)
            assert region["cathode_pixels"] == int(mask.sum())
            # the non-solid share: the pores where the column is all electrode, 1 - density
            non_solid = f[f"/region_{k}/non_solid_fraction"][()]
            porosity = f[f"/region_{k}/porosity"][()]
            inner = clear & (distance < 18.0)
            np.testing.assert_allclose(non_solid[inner], porosity[inner], atol=0.02)
            assert np.all(non_solid[clear & (distance > 21.0) & np.isfinite(non_solid)] > 0.98)
    # the pinhole magnification fixes the Compton pixel at the sample: 0.25 mm * 162 / 150
    # = 270 um, the test's planted scale, so the same footprint comes back
    geometry = {"incident_energy_kev": 115.0, "scattering_angle_deg": 90.0,
                "sample_to_pinhole_mm": 162.0, "pinhole_to_detector_mm": 150.0,
                "pixel_pitch_mm": 0.25, "beam_axis": "col"}  # fmt: skip
    fixed = run_correlate(xct, paths, tmp_path / "geo.h5", allow_scale=True, geometry=geometry)
    assert fixed["compton_pixel_um"] == pytest.approx(270.0)
    assert fixed["scale_fitted"] is False and fixed["compton_pixel_source"].startswith("pinhole")
    for g, r in zip(fixed["regions"], summary["regions"], strict=True):
        assert g["scale"] == 1.0 and g["cathode_pixels"] == r["cathode_pixels"]
    # a stricter footprint is smaller; a fraction outside (0, 1] is refused
    strict = run_correlate(xct, paths, tmp_path / "strict.h5", allow_scale=False,
                           cathode_fraction=0.95)  # fmt: skip
    assert all(
        s["cathode_pixels"] < r["cathode_pixels"]
        for s, r in zip(strict["regions"], summary["regions"], strict=True)
    )
    with pytest.raises(EngineInputError, match="cathode_fraction"):
        run_correlate(xct, paths, tmp_path / "bad.h5", cathode_fraction=0.0)
    assert not (tmp_path / "bad.h5").exists()


def test_register_cli_writes_contract_and_refuses_failures(tmp_path, capsys):
    pore, electrode = _segmented_cell(1)
    maps, paths = _compton_files(tmp_path, pore, electrode)
    moving = tmp_path / "density.npy"
    np.save(moving, maps.material_density[0])
    out = tmp_path / "registered.h5"
    argv = ["register", str(moving), f"{paths[0]}:/compton_counts", "-o", str(out)]
    assert main(argv) == 2  # 46 x 46 vs 80 x 80 without pixel sizes
    assert "pixel sizes" in capsys.readouterr().err
    assert main([*argv, "--moving-pixel-um", "270", "--fixed-pixel-um", "270"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) >= {"shift_px", "rotation_deg", "scale", "quality"}
    assert np.hypot(*np.subtract(summary["shift_px"], TRUE_SHIFT)) < 0.15
    with h5py.File(out) as f:
        assert f["/registered"].shape == (80, 80)
        matrix = f["/transform"][()]
    centre_moving = np.array([22.5, 22.5, 1.0])
    assert np.allclose(matrix @ centre_moving, [39.5 + 3.0, 39.5 - 2.0, 1.0], atol=0.15)
    # A failed registration writes nothing.
    noise = tmp_path / "noise.npy"
    np.save(noise, ndimage.gaussian_filter(np.random.default_rng(3).normal(size=(80, 80)), 2))
    bad_out = tmp_path / "bad.h5"
    assert main(["register", str(noise), f"{paths[0]}:/compton_counts", "-o", str(bad_out)]) == 2
    assert "quality" in capsys.readouterr().err
    assert not bad_out.exists()
    # The function the platform calls directly, with a manual override.
    manual = run_register(
        str(moving),
        f"{paths[0]}:/compton_counts",
        tmp_path / "manual.h5",
        moving_pixel_um=270,
        fixed_pixel_um=270,
        transform='{"shift_px": [3.0, -2.0], "rotation_deg": 2.0}',
    )
    assert manual["method"] == "manual" and manual["quality"] > 0.5

"""Plotly figure JSON built from stage outputs: axes in mm, shared colour scales, hover values,
Nyquist sign convention, NaN as null."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from jobs import figures


def write(path, datasets, attrs=None):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


def test_heatmap_has_mm_axes_nan_as_null_and_hover_units():
    z = np.arange(6, dtype=float).reshape(2, 3)
    z[0, 1] = np.nan
    trace = figures.heatmap(z, title="Li", colorbar="1 - x")
    assert trace["x"] == pytest.approx([0.135, 0.405, 0.675])
    assert trace["y"] == pytest.approx([0.135, 0.405])
    assert trace["z"][0][1] is None and trace["z"][1][2] == 5.0
    assert "mm" in trace["hovertemplate"] and "1 - x" in trace["hovertemplate"]
    json.dumps(trace, allow_nan=False)  # strict JSON: no NaN tokens


def test_region_maps_share_one_colour_scale():
    maps = [np.full((3, 3), v) for v in (0.61, 0.73, 0.76)]
    maps[1][0, 0] = np.nan
    fig = figures.li_maps_by_region(maps, ["region 1", "region 2", "region 3"])
    assert {(t["zmin"], t["zmax"]) for t in fig["data"]} == {(0.61, 0.76)}
    assert [t["xaxis"] for t in fig["data"]] == ["x", "x2", "x3"]
    domains = [fig["layout"][a]["domain"] for a in ("xaxis", "xaxis2", "xaxis3")]
    assert all(a[1] < b[0] for a, b in zip(domains, domains[1:], strict=False))  # side by side


def test_s_vs_li_calibration_line_reproduces_table_2():
    fig = figures.s_vs_lithium([{"s": 2.40, "li": 0.76, "label": "discharged r1"}])
    line = fig["data"][0]
    slope = (line["y"][-1] - line["y"][0]) / (line["x"][-1] - line["x"][0])
    assert line["y"][0] == pytest.approx(0.650) and slope == pytest.approx(2.309)
    for s, li in ((0.88, 0.10), (0.72, 0.03), (2.40, 0.76), (2.06, 0.61)):
        assert 0.650 + 2.309 * li == pytest.approx(s, abs=0.01)


def test_segment_figures_use_the_voxel_size(tmp_path):
    lateral = np.stack([np.full((4, 5), p) for p in (0.333, 0.232, 0.096)])
    path = write(
        tmp_path / "seg.h5",
        {"lateral_porosity": lateral, "porosity_by_region": [0.333, 0.232, 0.096]},
        {"voxel_size_um": 7.91},
    )
    figs = figures.build_figures("segment", path, {})
    maps = figs["porosity_maps"]["data"]
    assert maps[0]["x"][1] - maps[0]["x"][0] == pytest.approx(0.00791)
    assert figs["porosity_by_region"]["data"][0]["y"] == pytest.approx([33.3, 23.2, 9.6])


def test_nyquist_plots_minus_imaginary_part(tmp_path):
    omega = np.logspace(-2, 3, 20)
    z = 1 / np.sqrt(1j * omega) / np.tanh(np.sqrt(1j * omega))  # finite-length diffusion
    path = write(tmp_path / "eis.h5", {"impedance/z_real": z.real, "impedance/z_imag": z.imag})
    trace = figures.build_figures("eis_sim", path, {})["nyquist"]["data"][0]
    assert trace["x"] == pytest.approx(z.real.tolist())
    assert trace["y"] == pytest.approx((-z.imag).tolist())
    assert min(trace["y"]) > 0  # capacitive arc above the axis


def test_events_figures_sum_pixel_histograms(tmp_path):
    hist = np.zeros((2, 3, 4), np.uint32)
    hist[1, 2] = [1, 2, 3, 4]
    path = write(
        tmp_path / "spectra.h5",
        {
            "energy_bins": [90.0, 92.0, 94.0, 96.0],
            "summed_histogram": hist.sum(axis=(0, 1)),
            "pixel_histograms": hist,
        },
    )
    figs = figures.build_figures("events", path, {})
    assert figs["spectrum"]["data"][0]["y"] == [1, 2, 3, 4]
    assert figs["counts"]["data"][0]["z"][1][2] == 10.0


def test_wide_porosity_maps_are_drawn_as_block_means(tmp_path):
    # a 1100-px-wide lateral map is drawn at most 512 px wide: blocks of 3 x 3, NaN ignored
    rng = np.random.default_rng(3)
    lateral = rng.random((2, 30, 1100)).astype(np.float32)
    lateral[0, :3, :3] = np.nan  # one whole block NaN
    lateral[1, 0, 0] = np.nan  # one voxel of a block NaN
    path = write(tmp_path / "seg.h5", {"lateral_porosity": lateral}, {"voxel_size_um": 2.0})
    maps = figures.build_figures("segment", path, {})["porosity_maps"]["data"]
    z0, z1 = np.asarray(maps[0]["z"], dtype=float), np.asarray(maps[1]["z"], dtype=float)
    assert z0.shape == (10, 367)  # ceil(1100 / 3) columns, the last block one column wide
    assert np.isnan(z0[0, 0])
    assert z1[0, 0] == pytest.approx(np.nanmean(lateral[1, :3, :3]))
    assert z0[4, 10] == pytest.approx(lateral[0, 12:15, 30:33].mean())
    assert z0[2, -1] == pytest.approx(lateral[0, 6:9, 1098:1100].mean())
    assert maps[0]["x"][1] - maps[0]["x"][0] == pytest.approx(0.006)  # 3 voxels of 2 um

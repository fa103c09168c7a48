"""Figures of the stages whose files are read through ``analysis_engine.io.results``:
correlate (groups per region), electrochem (EIS with the fitted curve, cycling) and tortuosity
(only the middle plane of the 3D field). Files are written here with h5py; the figures must
carry exactly those numbers."""

from __future__ import annotations

import numpy as np
import pytest
from jobs import figures

from tests.web.test_jobs_figures import write


def test_correlate_figures_take_every_region_group(tmp_path):
    rng = np.random.default_rng(6)
    li = {r: rng.random((4, 5)) for r in (1, 2, 10)}
    data = {}
    for r, z in li.items():
        data[f"region_{r}/li_stoichiometry"] = z
        data[f"region_{r}/porosity"] = 1 - z
        data[f"region_{r}/pairs"] = np.stack([1 - z.ravel(), z.ravel()], axis=1)
    path = write(tmp_path / "corr.h5", data)
    figs = figures.build_figures("correlate", path, {})
    zs = [np.array(t["z"]) for t in figs["li_maps"]["data"]]
    for z, r in zip(zs, (1, 2, 10), strict=True):  # numeric order: region 10 last
        np.testing.assert_allclose(z, li[r])
    scatter = figs["li_vs_porosity"]["data"]
    assert [t["name"] for t in scatter] == ["region 1", "region 2", "region 10"]
    assert scatter[2]["y"] == pytest.approx(li[10].ravel().tolist())
    assert len(figs["overlay"]["data"]) == 6  # 3 porosity maps + 3 Li contours


def test_electrochem_figures_show_data_and_fit(tmp_path):
    f = np.logspace(4, -1, 12)
    z = 3 + 40 / (1 + 1j * 2 * np.pi * f * 40 * 2e-5)
    fit = z * 1.01
    path = write(
        tmp_path / "ec.h5",
        {
            "eis/frequency_hz": f,
            "eis/z_real_ohm": z.real,
            "eis/z_imag_ohm": z.imag,
            "eis/fit_z_real_ohm": fit.real,
            "eis/fit_z_imag_ohm": fit.imag,
        },
    )
    nyq = figures.build_figures("electrochem", path, {})["nyquist"]["data"]
    assert nyq[0]["y"] == pytest.approx((-z.imag).tolist())
    assert nyq[1]["y"] == pytest.approx((-fit.imag).tolist())
    path = write(
        tmp_path / "cy.h5",
        {
            "cycling/cycle": [1, 2, 3],
            "cycling/charge_capacity_mah_g": [190.0, 189.0, 188.0],
            "cycling/discharge_capacity_mah_g": [188.0, 187.5, 187.0],
            "cycling/coulombic_efficiency_pct": [98.9, 99.2, 99.5],
        },
    )
    cyc = figures.build_figures("electrochem", path, {})["cycling"]["data"]
    assert cyc[1]["y"] == [188.0, 187.5, 187.0] and cyc[2]["y"] == [98.9, 99.2, 99.5]
    empty = write(tmp_path / "none.h5", {"other": [1.0]})
    assert figures.build_figures("electrochem", empty, {}) == {}


def test_tortuosity_figure_reads_the_middle_plane(tmp_path):
    field = np.arange(3 * 4 * 5, dtype=float).reshape(3, 4, 5)
    path = write(tmp_path / "tau.h5", {"concentration": field})
    figs = figures.build_figures("tortuosity", path, {"tau": 2.5, "axis": 0})
    np.testing.assert_array_equal(np.array(figs["concentration"]["data"][0]["z"]), field[:, :, 2])
    assert figs["tortuosity"]["data"][0]["y"] == [2.5]

"""The digital twin (synthetic.beamtime): its files are valid and carry the planted truth.

Generated once per module at the reduced ``tiny`` size (a few seconds).
"""

import json

import h5py
import numpy as np
import pytest

from analysis_engine.compton.calibration import DEFAULT_CALIBRATION
from analysis_engine.electrochem import (
    diffusivity_from_warburg,
    fit_randles_warburg,
    summarize_cycling,
)
from analysis_engine.errors import EngineInputError
from analysis_engine.io.manifest import read_manifest
from analysis_engine.io.sniff import sniff
from analysis_engine.io.tables import read_cycling, read_eis
from analysis_engine.synthetic.beamtime import CELLS, planted_li_map
from analysis_engine.synthetic.commands import run_demo_data
from analysis_engine.tomo.segmentation import porosity_by_region


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    out = tmp_path_factory.mktemp("twin")
    summary = run_demo_data(out, size="tiny", seed=3)
    truth = json.loads((out / "ground_truth.json").read_text())
    return out, summary, truth


def test_every_manifest_file_sniffs_as_its_kind(twin):
    out, summary, truth = twin
    manifest = read_manifest(out)
    assert len(manifest.files) == 2 * (2 + 6 + 2)  # per cell: 2 XCT, 6 XCS-I, 2 tables
    assert {c["name"] for c in manifest.cells} == {"DIT-1", "SC-1"}
    for f in manifest.files:
        info = sniff(f.path, expected_kind=f.kind)
        assert info.kind == f.kind, f.relative_path
        if f.kind == "xcs_events":
            assert info.metadata["values"] == "adu" and info.metadata["has_calibration"]
        if f.kind == "xct_projections":
            cell = "dit" if f.cell == "DIT-1" else "sc"
            state = truth["cells"][cell]["xct"][f.state]
            assert info.metadata["shape"][1] == truth["cells"][cell]["thickness_voxels"]
            assert info.metadata["projections"] == state["n_angles"]
            assert info.metadata["pixel_size_m"] == pytest.approx(67.5e-6)
    assert set(summary["files"]) >= {f.relative_path for f in manifest.files}


def test_porosity_recomputed_from_written_phantom(twin):
    out, _, truth = twin
    with h5py.File(out / "truth_maps.h5", "r") as f:
        for key, cell in truth["cells"].items():
            pore = f[f"/{key}/pore_mask"][()].astype(bool)
            electrode = f[f"/{key}/electrode_mask"][()].astype(bool)
            assert pore.shape[0] == cell["thickness_voxels"]
            assert electrode.all(axis=(1, 2)).sum() == 0 and electrode.any(axis=(1, 2)).all()
            stats = porosity_by_region(pore, electrode, regions=3, thickness_axis=0)
            np.testing.assert_allclose(
                stats.porosity_by_region, cell["porosity_by_region"], atol=1e-12
            )
            # the realised porosity is the planted one (phantom: to a voxel per slice)
            np.testing.assert_allclose(
                stats.porosity_by_region, CELLS[key].porosity_by_region, atol=0.005
            )


def test_planted_li_maps_have_table2_means_and_follow_porosity(twin):
    out, _, truth = twin
    with h5py.File(out / "truth_maps.h5", "r") as f:
        for key, spec in CELLS.items():
            coverage = f[f"/{key}/coverage"][()]
            porosity = f[f"/{key}/porosity"][()]
            for state in ("charged", "discharged"):
                for r in range(3):
                    li = f[f"/{key}/{state}/li_region{r + 1}"][()]
                    inside = coverage[r] >= 0.5
                    assert np.nanmean(li[inside], dtype=np.float64) == pytest.approx(
                        spec.li[state][r], abs=1e-6
                    )
                    if spec.li[state][r] > 0 and key == "dit":
                        corr = np.corrcoef(li[inside], porosity[r][inside])[0, 1]
                        assert corr > 0.9  # Li higher where porosity is higher
    # the clip keeps Li physical
    phi = np.array([0.0, 0.9, 0.3, 0.3])
    li = planted_li_map(0.1, phi, np.ones(4, bool))
    assert li.min() >= 0 and li.mean() == pytest.approx(0.1, abs=1e-15)


def test_region_spectrum_gives_planted_s(twin, tmp_path):
    """events -> compton on one region: s_total vs the S of the noise-free summed spectrum.

    Tolerance: 3 sigma (counting) + 4 % (the detector model's charge sharing sums two noisy
    halves and loses sub-threshold shares; measured bias on the small twin: -2.6 %).
    """
    from analysis_engine.compton.commands import run_compton
    from analysis_engine.events.commands import run_events

    out, _, truth = twin
    planted = truth["cells"]["dit"]["xcsi"]["discharged"]["1"]
    run_events(out / planted["file"], tmp_path / "sp.h5")
    summary = run_compton(tmp_path / "sp.h5", tmp_path / "c.h5", fit_peaks=False)
    tol = 3 * summary["s_total_sigma"] + 0.04 * planted["s_summed_expected"]
    assert summary["s_total"] == pytest.approx(planted["s_summed_expected"], abs=tol)
    assert planted["li_summed_expected"] == pytest.approx(
        DEFAULT_CALIBRATION.stoichiometry(planted["s_summed_expected"]), abs=1e-9
    )
    # the region's planted mean (Table 2, 0.76) is what the summed spectrum reflects, to 0.03
    assert planted["li_summed_expected"] == pytest.approx(0.76, abs=0.03)


def test_electrochemistry_tables_carry_the_paper_numbers(twin):
    out, _, truth = twin
    for key, spec in CELLS.items():
        cyc = read_cycling(out / f"echem/{key}_cycling.csv").columns
        s = summarize_cycling(
            cyc["cycle"], cyc["charge_capacity_mah_g"], cyc["discharge_capacity_mah_g"]
        )
        assert (s.first_charge_mah_g, s.first_discharge_mah_g) == pytest.approx(
            (spec.charge_mah_g, spec.discharge_mah_g), abs=1e-6
        )
        assert s.retention_pct == pytest.approx(spec.retention_200_pct, abs=1e-6)
        assert s.mean_coulombic_efficiency_pct == pytest.approx(99.6, abs=1e-6)
        eis = read_eis(out / f"echem/{key}_eis.csv").columns
        fit = fit_randles_warburg(eis["frequency_hz"], eis["z_real_ohm"] + 1j * eis["z_imag_ohm"])
        assert fit.r_ct_ohm == pytest.approx(spec.r_ct_ohm, rel=0.05)
        assert diffusivity_from_warburg(fit.sigma_ohm_s05) == pytest.approx(
            spec.d_overall_cm2_s, rel=0.15
        )
    assert truth["cells"]["dit"]["electrochemistry"]["d_overall_cm2_s"] == 6.3e-11


def test_bad_size_is_refused(tmp_path):
    with pytest.raises(EngineInputError, match="size must be one of"):
        run_demo_data(tmp_path, size="huge")

"""The digital twin (synthetic.beamtime): its files are valid and carry the planted truth.

Generated once per module at the reduced ``tiny`` size (a few seconds).
"""

import json

import h5py
import numpy as np
import pytest
from scipy.special import erf

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


def test_planted_li_maps_have_table2_means_dit_follows_porosity_sc_does_not(twin):
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
                    if spec.li[state][r] > 0:
                        corr = np.corrcoef(li[inside], porosity[r][inside])[0, 1]
                        if key == "dit":
                            assert corr > 0.9  # Li higher where porosity is higher
                        else:  # the null cell: planted independently of porosity
                            assert abs(corr) < 0.05
    # the clip keeps Li physical
    phi = np.array([0.0, 0.9, 0.3, 0.3])
    li = planted_li_map(0.1, phi, np.ones(4, bool))
    assert li.min() >= 0 and li.mean() == pytest.approx(0.1, abs=1e-15)


def _gaussian_windows(sigma_au, blur_au):
    """(S_L, S_H) of a unit Gaussian profile blurred by a Gaussian: closed form (erf)."""
    s = np.hypot(sigma_au, blur_au) * np.sqrt(2)
    return erf(1 / s), erf(5 / s) - erf(1 / s)


def test_planted_cathode_s_is_the_closed_form_of_the_profile_model(twin):
    """The twin's planted cathode S = S_L / S_H of its three-Gaussian profile, by erf.

    The reference resolution (1.1 keV FWHM) is a Gaussian in p_z of 1.1 / 2.3548 keV times
    dp_z/dE at the 90 deg Compton line, dp_z/dE from Eq. 6 differentiated numerically here.
    """
    out, _, truth = twin
    model = truth["xcsi_model"]
    e1, mc2, alpha_inv = 115.0, 510.99895, 137.035999

    def pz(e2):  # Eq. 6 at 90 deg
        return (e2 - e1) / np.sqrt(e1**2 + e2**2) * alpha_inv + e1 * e2 / mc2 / np.sqrt(
            e1**2 + e2**2
        ) * alpha_inv

    line = e1 / (1 + e1 / mc2)
    jac = (pz(line + 1e-4) - pz(line - 1e-4)) / 2e-4
    blur = model["reference_fwhm_kev"] / 2.354820045 * jac
    (av, bv), (ac, bc), (ad, bd) = (_gaussian_windows(w, blur) for w in model["profile_widths_au"])
    d = model["deep_core_fraction"]
    with h5py.File(out / "truth_maps.h5", "r") as f:
        w = f["/dit/discharged/valence_weight_region1"][()]
        s = f["/dit/discharged/s_region1"][()]
        li = f["/dit/discharged/li_region1"][()]
    ok = np.isfinite(s)
    s_model = (w * av + (1 - d - w) * ac + d * ad) / (w * bv + (1 - d - w) * bc + d * bd)
    np.testing.assert_allclose(s_model[ok], s[ok], rtol=1e-6)  # maps stored as float32
    # and S follows the paper's line S = 0.650 + 2.309 (1 - x)
    np.testing.assert_allclose(s[ok], 0.650 + 2.309 * li[ok], rtol=1e-6)


@pytest.fixture(scope="module")
def chain_region1(twin, tmp_path_factory):
    """events -> compton on discharged region 1 of both cells, with the cathode mask and the
    non-solid volume share (pores + electrolyte around the footprint) as porosity map."""
    from analysis_engine.compton.commands import run_compton
    from analysis_engine.events.commands import run_events

    out, _, truth = twin
    tmp = tmp_path_factory.mktemp("chain")
    results = {}
    with h5py.File(out / "truth_maps.h5", "r") as f:
        for key in ("dit", "sc"):
            planted = truth["cells"][key]["xcsi"]["discharged"]["1"]
            mask = f[f"/{key}/coverage"][0] >= 0.5
            void = f[f"/{key}/discharged/void_region1"][()]
            li = f[f"/{key}/discharged/li_region1"][()]
            n_cathode = f[f"/{key}/discharged/n_cathode_region1"][()]
            porosity = f[f"/{key}/porosity"][0]
            run_events(out / planted["file"], tmp / f"{key}.h5")
            summary = run_compton(
                tmp / f"{key}.h5", tmp / f"{key}_c.h5", fit_peaks=False, mask=mask, porosity=void
            )
            with h5py.File(tmp / f"{key}_c.h5", "r") as g:
                li_map = g["li_stoichiometry"][()]
                angle = g["angle_deg"][()]
            results[key] = {
                "summary": summary,
                "mask": mask,
                "li_planted": li,
                "n_cathode": n_cathode,
                "porosity": porosity,
                "li_map": li_map,
                "angle": angle,
                "planted": planted,
            }
    return results


def test_chain_recovers_region_li_through_every_effect(chain_region1):
    """Li of the cathode (count-weighted planted mean: plain arithmetic on the planted maps)
    within 3 stated sigma plus 0.06: the chain does not correct CdZnTe tailing (1 %) and
    charge sharing, which lower S by about 1 % and 2.5 % (measured, docs)."""
    for key, res in chain_region1.items():
        summary = res["summary"]
        weights = np.where(res["mask"] & np.isfinite(res["li_planted"]), res["n_cathode"], 0)
        expected = float(np.sum(np.nan_to_num(res["li_planted"]) * weights) / weights.sum())
        tol = 3 * summary["li_total_sigma"] + 0.06
        assert summary["li_total"] == pytest.approx(expected, abs=tol), key
        assert summary["geometry"]["source"] == "/instrument of the spectra file"
        assert summary["resolution_correction"]["source"].startswith("/resolution_fwhm_kev")
        # the pinhole angles: 90 +- 3.77 deg along the columns
        assert res["angle"][0, 0] == pytest.approx(90 - 3.77, abs=0.01)


def test_null_cell_shows_no_li_porosity_correlation(chain_region1):
    """DIT (Li planted following porosity): significant positive per-pixel correlation of the
    recovered Li with porosity. SC (Li planted independently): none beyond 3 / sqrt(n)."""
    for key, res in chain_region1.items():
        ok = res["mask"] & np.isfinite(res["li_map"]) & np.isfinite(res["porosity"])
        r = np.corrcoef(res["li_map"][ok], res["porosity"][ok])[0, 1]
        bound = 3 / np.sqrt(ok.sum())
        if key == "dit":
            assert r > bound
        else:
            assert abs(r) < bound, r


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

"""The masked compton stage's electrolyte, carbon and binder correction: the composition comes
from the catalogue (no default assumed), and reports say whether it was applied and its size."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from catalogue.services import cathode_composition
from jobs import figures, planning


def _cell(composition: str):
    return SimpleNamespace(cathode=SimpleNamespace(composition=composition))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NMC811:C65:PVDF 90:5:5", [90.0, 5.0, 5.0]),
        ("96:2:2", [96.0, 2.0, 2.0]),
        ("NMC811 : Super P : PVDF = 92.5 : 3.5 : 4", [92.5, 3.5, 4.0]),
        ("", None),
        ("NMC811", None),
        ("90:10", None),  # two ratios: which is the binder?
        ("90:5:5 or 80:10:10", None),  # ambiguous
    ],
)
def test_cathode_composition_from_the_sample(text, expected):
    assert cathode_composition(_cell(text)) == expected


def test_masked_stage_takes_the_non_solid_fraction_only_with_a_composition():
    upstream = planning.UPSTREAM_KEY
    with_comp = planning._masked_parameters({"fit_peaks": False}, 2, [90.0, 5.0, 5.0])
    assert with_comp["mask"] == {upstream: "correlate", "path": "/region_2/cathode_mask"}
    assert with_comp["porosity"] == {upstream: "correlate", "path": "/region_2/non_solid_fraction"}
    assert with_comp["composition"] == [90.0, 5.0, 5.0]
    without = planning._masked_parameters({"fit_peaks": False}, 2, None)
    assert "porosity" not in without and "composition" not in without
    # the job's own composition wins over the catalogue's
    own = planning._masked_parameters({"composition": [80, 10, 10]}, 1, [90.0, 5.0, 5.0])
    assert own["composition"] == [80, 10, 10] and "porosity" in own


def test_unmasked_stage_drops_a_composition_without_porosity():
    params = planning._stage_parameters("compton", {"compton": {"composition": [90, 5, 5]}})
    assert "composition" not in params


def test_result_label_says_whether_the_correction_was_applied():
    applied = {"matrix_correction": {"delta_li": 0.0987, "li_total_measured": 0.6}}
    assert figures.electrolyte_correction(applied) == ("applied", pytest.approx(0.0987))
    assert figures.electrolyte_label(applied).endswith("applied: delta Li +0.099")
    assert figures.electrolyte_correction({"matrix_correction": None}) == ("not applied", None)
    assert "not applied" in figures.electrolyte_label({})


def test_correlate_takes_the_pinhole_geometry_of_the_compton_beamtime():
    from jobs import engine_registry as registry

    geometry = {"beam_axis": "col", "incident_energy_kev": 115.0, "pinhole_to_detector_mm": 150.0,
                "pixel_pitch_mm": 0.25, "sample_to_pinhole_mm": 160.0,
                "scattering_angle_deg": 90.0}  # fmt: skip
    beamtime = SimpleNamespace(instrument_geometry=lambda: geometry)
    dataset = SimpleNamespace(beamtime=beamtime)
    params = planning._correlate_parameters({"correlate": {"n_bins": 6}}, dataset)
    assert params["geometry"] == geometry and params["n_bins"] == 6
    # the job's parameters validate as they are (the geometry is an object option)
    assert registry.clean_parameters(registry.get_kind("correlate"), params)["geometry"] == geometry
    # no geometry recorded: correlate keeps its own options (free scale unless told otherwise)
    bare = SimpleNamespace(beamtime=SimpleNamespace(instrument_geometry=lambda: None))
    assert "geometry" not in planning._correlate_parameters({}, bare)
    own = planning._correlate_parameters({"correlate": {"allow_scale": False}}, bare)
    assert own == {"allow_scale": False}

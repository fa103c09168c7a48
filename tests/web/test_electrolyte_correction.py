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

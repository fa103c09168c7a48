"""Summaries and report tables read as tables: names, units, precision; the electrochem job
kind runs end to end and its result page shows the fit as a table with the Nyquist plot."""

from __future__ import annotations

import numpy as np
import pytest
from jobs.models import Result
from viewer.tables import describe, format_value, summary_rows, table_columns

from analysis_engine.io.tables import write_table


@pytest.mark.parametrize(
    "key,label,unit",
    [
        ("d_overall_cm2_s", "D_overall", "cm²/s"),
        ("d_overall_sigma_cm2_s", "u(D_overall)", "cm²/s"),
        ("warburg_sigma_ohm_s05", "Warburg σ", "Ω s⁻½"),
        ("warburg_sigma_sigma_ohm_s05", "u(Warburg σ)", "Ω s⁻½"),
        ("porosity_vol_pct", "Porosity", "vol%"),
        ("d_through_plane_1e-9_cm2_s", "D through plane", "10⁻⁹ cm²/s"),
        ("li_discharged_region_1", "Li discharged region 1", ""),
        ("first_charge_mah_g", "First charge", "mAh/g"),
    ],
)
def test_describe_names_and_units(key, label, unit):
    assert describe(key) == (label, unit)


def test_precision_and_rows():
    assert format_value(0.33812345) == "0.3381"
    assert format_value(6.3e-11) == "6.300e-11"
    assert format_value(None) == "–" and format_value(float("nan")) == "–"
    rows = summary_rows({"porosity_by_region": [0.3381, 0.2324], "tau": 1.5})
    assert rows == [
        ("Porosity, region 1", "0.3381", ""),
        ("Porosity, region 2", "0.2324", ""),
        ("τ", "1.5", ""),
    ]
    assert table_columns([{"state": "charged", "change_1_to_2_pct": -3.9}]) == [
        ("state", "State"),
        ("change_1_to_2_pct", "Change 1 to 2 (%)"),
    ]


def test_electrochem_job_and_result_page(
    api_as, client_as, owner, project, factories, tmp_path, django_capture_on_commit_callbacks
):
    f = np.logspace(5, -2, 40)
    w = 2 * np.pi * f
    sigma = 150.0
    z = 3 + 40 / (1 + 1j * w * 40 * 2e-5) + sigma * (1 - 1j) / np.sqrt(w)
    write_table(tmp_path / "e.csv", {"frequency_hz": f, "z_real_ohm": z.real, "z_imag_ohm": z.imag})
    ds = factories.make_dataset(
        project, content=(tmp_path / "e.csv").read_bytes(), kind="eis", name="eis"
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = api_as(owner).post(
            "/api/v1/jobs/", {"kind": "electrochem", "inputs": [ds.pk]}, format="json"
        )
    assert r.status_code == 202, r.content
    res = Result.objects.get(job_id=r.json()["id"])
    assert res.summary["r_ct_ohm"] == pytest.approx(40.0, rel=1e-5)
    assert set(res.figures) == {"nyquist", "bode"}
    fit = res.figures["nyquist"]["data"][1]
    np.testing.assert_allclose(fit["y"], -z.imag, rtol=1e-5)
    page = client_as(owner).get(f"/jobs/results/{res.pk}/").content.decode()
    assert 'id="summary-table"' in page
    assert '<th scope="row">R_CT</th><td class="num">40</td><td>Ω</td>' in page

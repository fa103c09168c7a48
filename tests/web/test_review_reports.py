"""Report follow-ups: measured D_overall beside simulated D_directional (the electrochem job
taking electrode area and Li+ concentration from the catalogue), relative changes whose base
is within its uncertainty of zero, and the dashboard's map thumbnails.

Expected values: the EIS spectrum is synthesised from the circuit's closed form with the
Warburg coefficient of a chosen D_overall (sigma = R T / (sqrt(2) F^2 A C sqrt(D))); Table 1
numbers are the paper's; PNG pixels are decoded with Pillow.
"""

from __future__ import annotations

import csv
import io

import h5py
import numpy as np
import pytest
from catalogue.services import with_catalogue_options
from django.core.files.base import ContentFile
from jobs import dispatch, reports
from jobs.models import AnalysisJob, JobStatus, Result
from PIL import Image
from viewer.templatetags.viewer_tags import readable_table

from analysis_engine.errors import EngineInputError
from analysis_engine.io.tables import write_table

R, F = 8.314462618, 96485.33212
D_DIT = 6.3e-11  # cm^2/s, the paper's measured D_overall of the DIT cell
# Table 1 (DIT): region -> (porosity %, tau in-plane, tau through-plane, D in, D through 1e-9)
TABLE1 = {
    1: (33.3, 8.7, 1.1, 5.3, 42.1),
    2: (23.2, 10.5, 2.3, 3.1, 14.0),
    3: (9.6, 11.2, 2.8, 1.2, 4.8),
}


def _eis_csv(tmp_path, *, d_cm2_s, area_cm2, conc_mol_cm3):
    sigma = R * 298.15 / (np.sqrt(2) * F**2 * area_cm2 * conc_mol_cm3 * np.sqrt(d_cm2_s))
    f = np.logspace(5, -2, 60)
    w = 2 * np.pi * f
    r_e, r_ct, c = 3.0, 40.0, 2e-5
    z = r_e + r_ct / (1 + 1j * w * r_ct * c) + sigma * (1 - 1j) / np.sqrt(w)
    path = tmp_path / "eis.csv"
    write_table(path, {"frequency_hz": f, "z_real_ohm": z.real, "z_imag_ohm": z.imag})
    return path


def _result(project, cell, kind, *, summary, content=None, charge_state=None, region=None):
    job = AnalysisJob.objects.create(
        project=project,
        kind=kind,
        status=JobStatus.SUCCEEDED,
        job_key=f"k-{kind}-{region}-{AnalysisJob.objects.count()}",
        cell=cell,
    )
    res = Result(
        project=project,
        job=job,
        kind=kind,
        cell=cell,
        charge_state=charge_state,
        region=region,
        summary=summary,
    )
    if content is not None:
        res.output_file.save(f"{kind}.h5", ContentFile(content), save=False)
    res.save()
    return res


def _h5(datasets) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return buf.getvalue()


@pytest.fixture
def dit(project, factories):
    cell = factories.make_cell(
        project, name="DIT", electrode_area_cm2=2.0, li_concentration_mol_l=1.0
    )
    cs = factories.make_charge_state(project, cell=cell, state="discharged")
    return cell, cs


def _simulated_transport(project, cell, cs):
    _result(
        project,
        cell,
        "segment",
        charge_state=cs,
        summary={"porosity_by_region": [TABLE1[r][0] / 100 for r in (1, 2, 3)]},
    )
    rows = []
    for r, (_eps, tau_in, tau_through, d_in, d_through) in TABLE1.items():
        rows.append(
            {
                "region": r,
                "direction": "in-plane",
                "tau": tau_in,
                "d_directional_cm2_s": d_in * 1e-9,
            }
        )
        rows.append(
            {
                "region": r,
                "direction": "through-plane",
                "tau": tau_through,
                "d_directional_cm2_s": d_through * 1e-9,
            }
        )
    _result(project, cell, "transport_table", charge_state=cs, summary={"rows": rows})


def test_electrochem_job_takes_area_and_concentration_from_the_catalogue(
    project, owner, dit, factories, tmp_path, django_capture_on_commit_callbacks, client_as
):
    cell, cs = dit
    csv_path = _eis_csv(tmp_path, d_cm2_s=D_DIT, area_cm2=2.0, conc_mol_cm3=1e-3)
    ds = factories.make_dataset(
        project, content=csv_path.read_bytes(), kind="eis", name="eis", cell=cell, charge_state=cs
    )
    with django_capture_on_commit_callbacks(execute=True):
        job, created = dispatch.submit_job(
            project=project, user=owner, kind="electrochem", datasets=[ds]
        )
    job.refresh_from_db()
    assert created and job.status == JobStatus.SUCCEEDED, job.error
    assert job.parameters["area_cm2"] == 2.0
    assert job.parameters["concentration_mol_cm3"] == pytest.approx(1e-3)
    summary = job.results.get().summary
    assert summary["d_overall_cm2_s"] == pytest.approx(D_DIT, rel=1e-4)

    # a parameter contradicting the catalogue is refused, not silently used
    with pytest.raises(EngineInputError, match="contradicts cell DIT"):
        dispatch.submit_job(
            project=project,
            user=owner,
            kind="electrochem",
            datasets=[ds],
            parameters={"area_cm2": 1.0},
        )

    _simulated_transport(project, cell, cs)
    table = reports.build_cell_report(cell)["tables"]["diffusivity"]
    assert len(table) == 6
    by_key = {(row["region"], row["direction"]): row for row in table}
    for r, (_, _, _, d_in, d_through) in TABLE1.items():
        for direction, d_sim in (("in-plane", d_in), ("through-plane", d_through)):
            row = by_key[(r, direction)]
            assert row["d_directional_1e-9_cm2_s"] == pytest.approx(d_sim)
            assert row["d_overall_1e-9_cm2_s"] == pytest.approx(D_DIT * 1e9, rel=1e-4)
            assert row["d_overall_sigma_1e-9_cm2_s"] >= 0
            assert row["directional_over_overall"] == pytest.approx(d_sim / (D_DIT * 1e9), abs=0.06)
    sample_rows = reports.build_sample_report(cell.cathode)["tables"]["diffusivity"]
    assert len(sample_rows) == 6 and {row["cell"] for row in sample_rows} == {"DIT"}
    overview = reports.build_cell_report(cell)["tables"]["methods"]
    assert overview[0]["d_overall_1e-9_cm2_s"] == pytest.approx(D_DIT * 1e9, rel=1e-4)

    page = client_as(owner).get(f"/jobs/cells/{cell.pk}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Measured D_overall beside simulated D_directional" in html
    assert "D_overall (10⁻⁹ cm²/s)" in html and "D_directional (10⁻⁹ cm²/s)" in html


def test_with_catalogue_options_falls_back_to_parameters(project, factories):
    bare = factories.make_cell(project)
    accepted = {"area_cm2", "concentration_mol_cm3"}
    assert with_catalogue_options(accepted, bare, {"area_cm2": 1.5}) == {"area_cm2": 1.5}
    half = factories.make_cell(project, li_concentration_mol_l=0.5)
    assert with_catalogue_options(accepted, half, {"area_cm2": 1.5}) == {
        "area_cm2": 1.5,
        "concentration_mol_cm3": pytest.approx(5e-4),
    }
    assert with_catalogue_options({"other"}, half, {}) == {}  # an engine that does not take it


def test_relative_change_of_a_base_within_its_uncertainty_is_a_dash_with_a_note():
    # charged cell, Table 2: 1 - x = 0.10, 0.03, 0.00; the region-2 base 0.03 +- 0.04 is noise
    rows = reports.gradient_rows(
        {"charged": {1: 0.10, 2: 0.03, 3: 0.00}, "discharged": {1: 0.76, 2: 0.73, 3: 0.61}},
        {"charged": {1: 0.02, 2: 0.04, 3: 0.04}, "discharged": {1: 0.02, 2: 0.02, 3: 0.02}},
    )
    charged, discharged = rows
    assert charged["change_1_to_2_pct"] == pytest.approx(-70.0)  # base 0.10 > 0.02: shown
    assert charged["change_2_to_3_pct"] is None
    assert "within its uncertainty of zero" in charged["_notes"]["change_2_to_3_pct"]
    assert "_notes" not in discharged
    assert discharged["change_2_to_3_pct"] == pytest.approx(-16.4, abs=0.05)
    assert reports.percent_change(0.03, 0.0, before_sigma=0.04) is None
    assert reports.percent_change(0.03, 0.0, before_sigma=0.01) == pytest.approx(-100.0)

    html = str(readable_table(rows))
    assert html.count('class="note-ref"') == 1 and 'id="note-1"' in html
    assert "-106" not in html and "_notes" not in html
    header = next(csv.reader(io.StringIO(reports.tables_to_csv(rows))))
    assert "_notes" not in header


def test_report_takes_uncertainties_from_the_compton_summaries(
    project, factories, client_as, owner
):
    cell = factories.make_cell(project, name="charged cell")
    cs = factories.make_charge_state(project, cell=cell, state="charged")
    for region, (li, sigma) in enumerate(((0.10, 0.01), (0.03, 0.05), (0.00, 0.05)), start=1):
        _result(
            project,
            cell,
            "compton",
            charge_state=cs,
            region=region,
            summary={"li_total": li, "li_total_sigma": sigma, "s_total": 0.65 + 2.309 * li},
        )
    gradient = reports.build_cell_report(cell)["tables"]["gradient"][0]
    assert gradient["change_1_to_2_pct"] == pytest.approx(-70.0)
    assert gradient["change_2_to_3_pct"] is None and "change_2_to_3_pct" in gradient["_notes"]
    html = client_as(owner).get(f"/jobs/cells/{cell.pk}/report/").content.decode()
    assert "within its uncertainty of zero" in html


def test_dashboard_thumbnails_link_to_results_and_survive_missing_files(
    project, owner, outsider, factories, client_as
):
    cell = factories.make_cell(project, name="thumb cell")
    cs = factories.make_charge_state(project, cell=cell, state="discharged")
    li = np.linspace(0.6, 0.8, 80 * 80).reshape(80, 80)
    li[0, 0] = np.nan
    compton = _result(
        project,
        cell,
        "compton",
        charge_state=cs,
        region=1,
        summary={"li_total": 0.7},
        content=_h5({"li_stoichiometry": li}),
    )
    lateral = np.stack([np.full((20, 30), v) for v in (0.33, 0.23, 0.10)])
    seg = _result(
        project,
        cell,
        "segment",
        charge_state=cs,
        summary={"porosity_by_region": [0.33, 0.23, 0.10]},
        content=_h5({"lateral_porosity": lateral}),
    )
    c = client_as(owner)
    html = c.get(f"/projects/{project.pk}/").content.decode()
    assert 'id="cell-maps"' in html
    li_url = f"/viewer/results/{compton.pk}/thumbnail/li.png"
    assert li_url in html and compton.get_absolute_url() in html
    assert f"/viewer/results/{seg.pk}/thumbnail/porosity-2.png" in html

    r = c.get(li_url)
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    assert img.shape == (160, 160, 4)  # 80 px map repeated x2
    assert img[0, 0, 3] == 0 and img[1, 1, 3] == 0  # the NaN pixel, transparent
    np.testing.assert_array_equal(img[0, 2], [68, 1, 84, 255])  # lowest Li: viridis start
    np.testing.assert_array_equal(img[-1, -1], [253, 231, 37, 255])  # highest: viridis end
    r = c.get(f"/viewer/results/{seg.pk}/thumbnail/porosity-2.png")
    assert r.status_code == 200
    assert c.get(f"/viewer/results/{seg.pk}/thumbnail/porosity-7.png").status_code == 404
    assert client_as(outsider).get(li_url).status_code == 404

    # the result file disappears: the dashboard still renders and the picture answers 404
    compton.output_file.storage.delete(compton.output_file.name)
    html = client_as(owner).get(f"/projects/{project.pk}/").content.decode()
    assert "file missing" in html
    assert client_as(owner).get(li_url).status_code == 404

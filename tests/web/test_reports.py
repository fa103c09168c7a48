"""Whole-cell pipeline and comparison report: numbers against the paper's Table 2 / text."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from jobs import reports
from jobs.models import AnalysisJob, JobStatus, Result

# Paper Table 2 (SCIENCE.md): 1 - x per region
TABLE2 = {"charged": (0.10, 0.03, 0.00), "discharged": (0.76, 0.73, 0.61)}


def test_percent_change_and_gradient_match_the_paper():
    rows = reports.gradient_rows({"discharged": {1: 0.76, 2: 0.73, 3: 0.61}})
    # the paper: "reduced by only 3% from position 1 to 2, and by 16% from position 2 to 3"
    assert rows[0]["change_1_to_2_pct"] == pytest.approx(-3.9, abs=0.05)
    assert rows[0]["change_2_to_3_pct"] == pytest.approx(-16.4, abs=0.05)
    assert rows[0]["change_1_to_3_pct"] == pytest.approx(-19.7, abs=0.05)
    assert reports.percent_change(0.0, 1.0) is None


def test_tables_to_csv_unions_columns():
    text = reports.tables_to_csv([{"a": 1, "b": None}, {"a": 2, "c": 3.5}])
    assert list(csv.reader(io.StringIO(text))) == [["a", "b", "c"], ["1", "", ""], ["2", "", "3.5"]]


@pytest.fixture
def dit_cell(spectra_dataset, project, factories):
    cell = factories.make_cell(project, name="DIT cell")
    for state, values in TABLE2.items():
        cs = factories.make_charge_state(project, cell=cell, state=state)
        for region, li in enumerate(values, start=1):
            spectra_dataset(factories, project, li=li, cell=cell, charge_state=cs, region=region)
    return cell


def test_pipeline_runs_every_state_and_region_then_reports(
    fake_engine,
    project,
    analyst,
    dit_cell,
    api_as,
    client_as,
    django_capture_on_commit_callbacks,
):
    api = api_as(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/v1/jobs/", {"kind": "pipeline", "cell": dit_cell.pk}, format="json")
    assert r.status_code == 202, r.content
    parent = AnalysisJob.objects.get(pk=r.json()["id"])
    assert parent.status == JobStatus.SUCCEEDED, parent.error
    children = parent.children.all()
    assert children.count() == 6 and all(c.status == "succeeded" for c in children)
    assert {(c.charge_state.state, c.region) for c in children} == {
        (s, r) for s in TABLE2 for r in (1, 2, 3)
    }
    job = api.get(f"/api/v1/jobs/{parent.pk}/").json()
    assert len(job["children"]) == 6 and job["progress"] == 1.0
    # resubmitting the same pipeline returns it
    again = api.post("/api/v1/jobs/", {"kind": "pipeline", "cell": dit_cell.pk}, format="json")
    assert again.status_code == 200 and again.json()["id"] == parent.pk

    summary = Result.objects.get(job=parent).summary
    gradient = {row["state"]: row for row in summary["tables"]["gradient"]}
    assert gradient["discharged"]["change_1_to_2_pct"] == pytest.approx(-3.9, abs=0.05)
    assert gradient["discharged"]["change_2_to_3_pct"] == pytest.approx(-16.4, abs=0.05)
    cvd = {row["region"]: row for row in summary["tables"]["charged_vs_discharged"]}
    for region in (1, 2, 3):
        assert cvd[region]["li_charged"] == pytest.approx(TABLE2["charged"][region - 1])
        assert cvd[region]["li_discharged"] == pytest.approx(TABLE2["discharged"][region - 1])
        # S from the calibration line reproduces Table 2 within 0.01 (S = 0.650 + 2.309 (1-x))
        assert cvd[region]["s_discharged"] == pytest.approx(
            (2.40, 2.34, 2.06)[region - 1], abs=0.01
        )

    report = reports.build_cell_report(dit_cell)
    li_maps = report["figures"]["li_maps"]
    assert len(li_maps["data"]) == 6
    # one shared colour scale across all six maps
    assert {(t["zmin"], t["zmax"]) for t in li_maps["data"]} == {(0.0, 0.76)}
    assert sum(t["showscale"] for t in li_maps["data"]) == 1
    line = report["figures"]["s_vs_li"]["data"][0]
    assert line["y"][0] == pytest.approx(0.650) and line["y"][-1] == pytest.approx(0.650 + 2.309)

    client = client_as(analyst)
    page = client.get(f"/jobs/cells/{dit_cell.pk}/report/")
    assert page.status_code == 200 and b"-16.4" in page.content
    html = client.get(f"/jobs/cells/{dit_cell.pk}/report.html")
    assert html.status_code == 200
    text = html.content.decode()
    assert "attachment" in html["Content-Disposition"]
    assert "plotly.js v" in text[:200000]  # plotly.js is inlined
    # self-contained: outside the inlined library, no external scripts, stylesheets or fetches
    own = text.replace(reports.PLOTLY_JS.read_text(encoding="utf-8"), "")
    assert len(text) - len(own) > 1_000_000
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", own)
    assert '"li_maps"' in text
    csv_text = client.get(f"/jobs/cells/{dit_cell.pk}/report/gradient.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["state"]: float(r["change_2_to_3_pct"]) for r in rows}["discharged"] == -16.4
    bundle = zipfile.ZipFile(
        io.BytesIO(client.get(f"/jobs/cells/{dit_cell.pk}/report.zip").content)
    )
    names = bundle.namelist()
    assert any(n.endswith(".html") for n in names)
    assert any(n.endswith("_charged_vs_discharged.csv") for n in names)


def test_report_compares_dit_with_slurry_cells(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    dit_cell,
    factories,
    api_as,
    django_capture_on_commit_callbacks,
):
    slurry = factories.make_cell(
        project,
        name="SC cell",
        cathode=factories.make_sample(project, name="NMC811 SC", fabrication_method="slurry"),
    )
    cs = factories.make_charge_state(project, cell=slurry, state="discharged")
    for region, li in enumerate((0.70, 0.55, 0.40), start=1):
        spectra_dataset(factories, project, li=li, cell=slurry, charge_state=cs, region=region)
    api = api_as(analyst)
    with django_capture_on_commit_callbacks(execute=True):
        for cell in (dit_cell, slurry):
            api.post("/api/v1/jobs/", {"kind": "pipeline", "cell": cell.pk}, format="json")
    methods = {row["cell"]: row for row in reports.build_cell_report(dit_cell)["tables"]["methods"]}
    assert methods["DIT cell"]["method"] == "Directional ice templating"
    assert methods["SC cell"]["method"] == "Slurry casting"
    assert methods["SC cell"]["li_discharged_region_3"] == pytest.approx(0.40)
    assert methods["DIT cell"]["li_discharged_region_3"] == pytest.approx(0.61)


def test_report_pages_are_scoped(project, outsider, viewer, dit_cell, client_as):
    assert client_as(outsider).get(f"/jobs/cells/{dit_cell.pk}/report/").status_code == 404
    assert client_as(outsider).get(f"/jobs/cells/{dit_cell.pk}/report.html").status_code == 404
    assert client_as(viewer).get(f"/jobs/cells/{dit_cell.pk}/report/").status_code == 200


def test_sample_report_binds_its_cells_tables(
    spectra_dataset,
    fake_engine,
    project,
    analyst,
    dit_cell,
    factories,
    client_as,
    api_as,
    django_capture_on_commit_callbacks,
):
    second = factories.make_cell(project, name="DIT cell B", cathode=dit_cell.cathode)
    cs = factories.make_charge_state(project, cell=second, state="discharged")
    for region, li in enumerate((0.74, 0.70, 0.62), start=1):
        spectra_dataset(factories, project, li=li, cell=second, charge_state=cs, region=region)
    with django_capture_on_commit_callbacks(execute=True):
        for cell in (dit_cell, second):
            api_as(analyst).post(
                "/api/v1/jobs/", {"kind": "pipeline", "cell": cell.pk}, format="json"
            )
    report = reports.build_sample_report(dit_cell.cathode)
    gradient = {(r["cell"], r["state"]): r for r in report["tables"]["gradient"]}
    assert gradient[("DIT cell", "discharged")]["change_2_to_3_pct"] == pytest.approx(-16.4)
    assert gradient[("DIT cell B", "discharged")]["li_region_1"] == pytest.approx(0.74)
    assert {f"li_maps_cell{dit_cell.pk}", f"li_maps_cell{second.pk}"} <= set(report["figures"])
    client = client_as(analyst)
    sample_id = dit_cell.cathode_id
    assert client.get(f"/jobs/samples/{sample_id}/report/").status_code == 200
    csv_text = client.get(f"/jobs/samples/{sample_id}/report/gradient.csv").content.decode()
    assert "DIT cell B" in csv_text
    assert client.get(f"/jobs/results/{sample_id}/report/").status_code == 404

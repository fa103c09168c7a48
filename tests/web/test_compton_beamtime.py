"""Compton jobs and the beamtime's instrument: geometry fields and calibrations.

Expected angles come from the closed form theta(j) = theta0 + atan((j - (n - 1)/2) * pitch /
pinhole_to_detector) written out here, not from the engine's geometry module.
"""

from __future__ import annotations

import hashlib
import math

import h5py
import numpy as np
import pytest
from catalogue.models import ComptonCalibration
from jobs import dispatch, execution, reports
from jobs.models import AnalysisJob, JobStatus, Result

from analysis_engine.synthetic.compton import spectra_for_s_map

GEOMETRY = {
    "beam_energy_kev": 115.0,
    "scattering_angle_deg": 90.0,
    "sample_to_pinhole_mm": 160.0,
    "pinhole_to_detector_mm": 150.0,
    "pixel_pitch_mm": 0.25,
    "beam_axis": "col",
}


@pytest.fixture
def spectra_file(tmp_path):
    energy = np.arange(79.0, 111.0, 0.25)
    cube = spectra_for_s_map(
        np.full((3, 8), 0.87), energy, counts_map=np.full((3, 8), 2e5), rng=np.random.default_rng(0)
    )
    path = tmp_path / "spectra.h5"
    with h5py.File(path, "w") as f:
        f["energy_bins"] = energy
        f["pixel_histograms"] = cube
    return path.read_bytes()


def _dataset(factories, project, content, **extra):
    return factories.make_dataset(
        project,
        content=content,
        kind="xcs_spectra",
        sha256=hashlib.sha256(content).hexdigest(),
        **extra,
    )


def test_beamtime_geometry_reaches_the_compton_engine(project, analyst, factories, spectra_file):
    beamtime = factories.make_beamtime(project, **GEOMETRY)
    ds = _dataset(factories, project, spectra_file, beamtime=beamtime)
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="compton",
        datasets=[ds],
        parameters={"background": "none", "fit_peaks": False},
    )
    assert job.parameters["geometry"]["pinhole_to_detector_mm"] == 150.0
    assert job.parameters["geometry"]["incident_energy_kev"] == 115.0
    status = execution.execute_job(job.pk)
    assert status == JobStatus.SUCCEEDED, AnalysisJob.objects.get(pk=job.pk).error
    with h5py.File(Result.objects.get(job=job).output_file.path, "r") as f:
        angles = f["angle_deg"][()]
    j = np.arange(8)
    expected = 90.0 + np.degrees(np.arctan((j - 3.5) * 0.25 / 150.0))
    np.testing.assert_allclose(
        angles, np.broadcast_to(expected, (3, 8)), rtol=0, atol=2e-5
    )  # float32 map
    # edge pixel: atan(0.875 / 150) = 0.3342 deg off the centre angle
    assert angles[0, -1] - 90.0 == pytest.approx(math.degrees(math.atan(0.875 / 150)), abs=2e-5)


def test_job_geometry_wins_over_the_beamtime(project, analyst, factories, spectra_file):
    beamtime = factories.make_beamtime(project, **GEOMETRY)
    ds = _dataset(factories, project, spectra_file, beamtime=beamtime)
    own = {**{k: v for k, v in GEOMETRY.items() if k != "beam_energy_kev"}}
    own["incident_energy_kev"] = 115.0
    own["pinhole_to_detector_mm"] = 300.0
    job, _ = dispatch.submit_job(
        project=project, user=analyst, kind="compton", datasets=[ds],
        parameters={"geometry": own},
    )  # fmt: skip
    assert job.parameters["geometry"]["pinhole_to_detector_mm"] == 300.0


def test_beamtime_without_geometry_passes_none(project, analyst, factories, spectra_file):
    beamtime = factories.make_beamtime(project, beam_energy_kev=115.0)
    ds = _dataset(factories, project, spectra_file, beamtime=beamtime)
    job, _ = dispatch.submit_job(project=project, user=analyst, kind="compton", datasets=[ds])
    assert "geometry" not in job.parameters


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pinhole_to_detector_mm", -150.0),
        ("sample_to_pinhole_mm", 0.0),
        ("pixel_pitch_mm", -0.25),
        ("scattering_angle_deg", 190.0),
        ("beam_axis", "diagonal"),
        ("beam_energy_kev", None),
    ],
)
def test_impossible_geometry_is_a_400_naming_the_field(api_as, analyst, project, field, value):
    body = {"project": project.pk, "facility": "Diamond", "beamline": "I12", **GEOMETRY}
    body[field] = value
    response = api_as(analyst).post("/api/v1/beamtimes/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_partial_geometry_names_the_missing_fields(api_as, analyst, project):
    body = {"project": project.pk, "facility": "Diamond", "beamline": "I12"}
    body["pixel_pitch_mm"] = 0.25
    response = api_as(analyst).post("/api/v1/beamtimes/", body, format="json")
    assert response.status_code == 400
    assert "pinhole_to_detector_mm" in response.json()
    assert "beam_axis" in response.json()


def test_complete_geometry_is_accepted(api_as, analyst, project):
    body = {"project": project.pk, "facility": "Diamond", "beamline": "I12", **GEOMETRY}
    response = api_as(analyst).post("/api/v1/beamtimes/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["beam_axis"] == "col"


# A calibration line planted in the standards' spectra (not the paper's): S = 0.80 + 0.50 (1-x)
PLANTED_A, PLANTED_B = 0.80, 0.50


def _standard(factories, project, tmp_path, beamtime, one_minus_x, seed):
    energy = np.arange(78.0, 110.0, 0.25)
    s = PLANTED_A + PLANTED_B * one_minus_x
    cube = spectra_for_s_map(
        np.full((4, 4), s), energy, counts_map=np.full((4, 4), 5e6), rng=np.random.default_rng(seed)
    )
    path = tmp_path / f"standard{seed}.h5"
    with h5py.File(path, "w") as f:
        f["energy_bins"] = energy
        f["pixel_histograms"] = cube
    return _dataset(factories, project, path.read_bytes(), beamtime=beamtime, name=f"std {seed}")


def test_calibration_job_makes_the_beamtime_calibration_that_maps_then_use(
    project, analyst, factories, tmp_path, spectra_file
):
    beamtime = factories.make_beamtime(project, detector="HEXITEC 80x80")
    truths = (0.1, 0.5, 0.9)
    standards = [
        _standard(factories, project, tmp_path, beamtime, li, seed)
        for seed, li in enumerate(truths)
    ]
    job, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="compton_calibrate",
        datasets=standards,
        parameters={"one_minus_x": list(truths), "background": "none"},
    )
    status = execution.execute_job(job.pk)
    assert status == JobStatus.SUCCEEDED, AnalysisJob.objects.get(pk=job.pk).error
    calibration = ComptonCalibration.objects.get(beamtime=beamtime)
    assert calibration.detector == "HEXITEC 80x80"
    # 8e7 counts per standard: S to about 1e-4, so A and B within 1 %
    assert calibration.intercept == pytest.approx(PLANTED_A, rel=0.01)
    assert calibration.slope == pytest.approx(PLANTED_B, rel=0.01)
    assert calibration.covariance_ab < 0  # intercept and slope of a line through x > 0
    assert [p["spectra"] for p in calibration.standards] == ["std 0", "std 1", "std 2"]
    fig = Result.objects.get(job=job).figures["calibration"]
    assert fig["data"][1]["x"] == list(truths)  # the standards at their known 1 - x
    assert "calibration from standards" in fig["layout"]["title"]["text"]
    # a map on the same beamtime now uses it, and says so
    ds = _dataset(factories, project, spectra_file, beamtime=beamtime)
    compton, _ = dispatch.submit_job(
        project=project,
        user=analyst,
        kind="compton",
        datasets=[ds],
        parameters={"background": "none", "fit_peaks": False},
    )
    assert compton.parameters["calibration"] == {"result": calibration.result_id}
    status = execution.execute_job(compton.pk)
    assert status == JobStatus.SUCCEEDED, AnalysisJob.objects.get(pk=compton.pk).error
    summary = Result.objects.get(job=compton).summary
    assert summary["calibration"]["is_default"] is False
    assert summary["calibration"]["intercept"] == pytest.approx(calibration.intercept)
    title = Result.objects.get(job=compton).figures["s_vs_li"]["layout"]["title"]["text"]
    assert "calibration from standards" in title
    assert f"+- {calibration.intercept_sigma:.3f}" in title


def test_without_a_calibration_maps_use_the_paper_line_labelled(
    project, analyst, factories, spectra_file
):
    ds = _dataset(factories, project, spectra_file, beamtime=factories.make_beamtime(project))
    job, _ = dispatch.submit_job(
        project=project, user=analyst, kind="compton", datasets=[ds],
        parameters={"background": "none", "fit_peaks": False},
    )  # fmt: skip
    assert "calibration" not in job.parameters
    assert execution.execute_job(job.pk) == JobStatus.SUCCEEDED
    summary = Result.objects.get(job=job).summary
    assert summary["calibration"]["is_default"] is True
    assert summary["calibration"]["intercept"] == 0.650
    assert summary["calibration"]["slope"] == 2.309
    title = Result.objects.get(job=job).figures["s_vs_li"]["layout"]["title"]["text"]
    assert title == "S = 0.650 + 2.309 (1 - x): the paper's calibration (default)"


def test_result_and_report_show_geometry_maps_and_calibration(
    project, analyst, factories, spectra_file
):
    beamtime = factories.make_beamtime(project, **GEOMETRY)
    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell, state="charged")
    ds = _dataset(
        factories, project, spectra_file, beamtime=beamtime, cell=cell, charge_state=state,
        region=2,
    )  # fmt: skip
    job, _ = dispatch.submit_job(
        project=project, user=analyst, kind="compton", datasets=[ds],
        parameters={"background": "fit", "fit_peaks": True, "min_counts": 10},
    )  # fmt: skip
    assert execution.execute_job(job.pk) == JobStatus.SUCCEEDED, AnalysisJob.objects.get(
        pk=job.pk
    ).error
    result = Result.objects.get(job=job)
    figs = result.figures
    for name in ("angle_deg", "line_energy_kev", "background_per_kev", "peak_fwhm_kev"):
        assert figs[name]["data"][0]["type"] == "heatmap", name
    # line energy at the edge column, Compton's formula at that pixel's angle
    theta = math.radians(90.0 + math.degrees(math.atan(3.5 * 0.25 / 150.0)))
    edge = 115.0 / (1 + 115.0 / 510.998950 * (1 - math.cos(theta)))
    assert figs["line_energy_kev"]["data"][0]["z"][0][-1] == pytest.approx(edge, abs=1e-3)
    report = reports.build_cell_report(cell, compare_methods=False)
    (row,) = report["tables"]["li_by_region"]
    assert row["calibration"].endswith("the paper's calibration (default)")
    assert row["li_sigma"] is not None
    assert report["figures"]["s_vs_li"]["layout"]["title"]["text"] == row["calibration"]


def test_calibration_job_refuses_a_count_mismatch(project, analyst, factories, tmp_path):
    beamtime = factories.make_beamtime(project)
    standards = [
        _standard(factories, project, tmp_path, beamtime, li, s) for s, li in ((1, 0.1), (2, 0.5))
    ]
    job, _ = dispatch.submit_job(
        project=project, user=analyst, kind="compton_calibrate", datasets=standards,
        parameters={"one_minus_x": [0.1, 0.5, 0.9], "background": "none"},
    )  # fmt: skip
    assert execution.execute_job(job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert "one_minus_x gives 3 value(s) for 2 standard spectra" in job.error
    assert not ComptonCalibration.objects.exists()


def test_beamtime_page_shows_geometry_and_calibrations(project, owner, factories, client_as):
    beamtime = factories.make_beamtime(project, detector="HEXITEC", **GEOMETRY)
    ComptonCalibration.objects.create(
        project=project, beamtime=beamtime, detector="HEXITEC", intercept=0.8, slope=0.5,
        intercept_sigma=0.01, slope_sigma=0.02, covariance_ab=-1e-4,
        standards=[{"s": 0.85, "one_minus_x": 0.1}, {"s": 1.25, "one_minus_x": 0.9}],
    )  # fmt: skip
    page = client_as(owner).get(beamtime.get_absolute_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert "Pinhole to detector (mm)" in text
    assert "S = (0.8000 +- 0.0100) + (0.5000 +- 0.0200) (1 - x)" in text
    assert "2 standards" in text


def test_beamtime_form_names_the_impossible_field(project, owner, client_as):
    body = {"project": project.pk, "facility": "Diamond", "beamline": "I12", **GEOMETRY}
    body["sample_to_pinhole_mm"] = -160
    page = client_as(owner).post("/catalogue/beamtimes/add/", body)
    assert page.status_code == 200  # the form again, with the error next to the field
    errors = page.context["form"].errors
    assert list(errors) == ["sample_to_pinhole_mm"]
    assert "Must be a number > 0, got -160." in errors["sample_to_pinhole_mm"]

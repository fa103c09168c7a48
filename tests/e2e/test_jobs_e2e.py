"""End to end in real Chromium: log in, create a cell, upload spectra, run a Compton job, watch
its progress live, see the Li stoichiometry map render with the planted numbers; a viewer sees
the result but no run button; a user of another project gets 404.

Runs against pytest-django's live server and a real Celery worker process (the integration
suite's fixture), with Chromium at /usr/bin/chromium (installed by .ci/run).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import celery_worker_process  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CORRELI_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correli-e2e-pw-1"
# planted S map: 2.40 in the top row down to 2.06 in the bottom row (Table 2, discharged)
S_TOP, S_BOTTOM = 2.40, 2.06


def li_of(s: float) -> float:
    return (s - 0.650) / 2.309


@pytest.fixture(scope="module")
def spectra_file(tmp_path_factory) -> Path:
    from analysis_engine.io.spectra import write_spectra
    from analysis_engine.synthetic.compton import spectra_for_s_map

    s_map = np.empty((80, 80))
    s_map[:] = np.linspace(S_TOP, S_BOTTOM, 80)[:, None]
    bins = np.arange(60.0, 120.0, 0.05) + 0.025
    expected = np.clip(spectra_for_s_map(s_map, bins, counts_map=20000.0), 0, None)
    counts = np.random.default_rng(3).poisson(expected).astype(np.uint32)
    path = tmp_path_factory.mktemp("e2e") / "discharged_region1_spectra.h5"
    write_spectra(path, bins, counts)
    return path


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes
    # between browser steps are ordinary synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def login(browser, live_server, username):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, page.content()[:2000]
    return page


def upload_dataset(page, *, project, cell, path: Path) -> int:
    """Upload through the uploads widget when that app is installed, else the API (multipart)."""
    from django.conf import settings

    if "uploads" in settings.INSTALLED_APPS:
        page.goto(f"/uploads/?project={project.pk}&cell={cell.pk}")
        widget = page.locator("#upload-dropzone")
        widget.locator("select[name=project]").select_option(str(project.pk))
        widget.locator("select[name=dataset_kind]").select_option("xcs_spectra")
        widget.locator("select[name=cell]").select_option(str(cell.pk))
        widget.locator("input[name=region]").fill("1")
        widget.locator("input[type=file]").set_input_files(str(path))
        page.wait_for_selector("#upload-dropzone .upload-item.done", timeout=120_000)
    else:
        token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        response = page.request.post(
            "/api/v1/datasets/",
            multipart={
                "project": str(project.pk),
                "cell": str(cell.pk),
                "kind": "xcs_spectra",
                "region": "1",
                "file": {
                    "name": path.name,
                    "mimeType": "application/x-hdf5",
                    "buffer": path.read_bytes(),
                },
            },
            headers={"X-CSRFToken": token, "Referer": page.url},
        )
        assert response.status == 201, response.text()
    from catalogue.models import Dataset

    dataset = Dataset.objects.get(name=path.name)
    if dataset.cell_id is None:
        dataset.cell = cell
        dataset.save()
    assert dataset.status == "ready", dataset.status_message
    return dataset.pk


def test_upload_run_watch_and_review(
    celery_worker_process,  # noqa: F811
    live_server,
    browser,
    spectra_file,
    factories,
):
    from catalogue.models import Cell
    from jobs.models import AnalysisJob, Result

    owner = _user(factories, "alice")
    viewer = _user(factories, "victor")
    outsider = _user(factories, "olga")
    project = factories.make_project(owner, name="DIT NMC811")
    factories.add_member(project, viewer, "viewer")
    factories.make_project(outsider, name="Another lab")
    sample = factories.make_sample(project, name="NMC811 DIT 1 mm")

    page = login(browser, live_server, "alice")
    # create a cell through the catalogue form
    page.goto("/catalogue/cells/add/")
    page.select_option("select[name=project]", str(project.pk))
    page.fill("input[name=name]", "CR2032-DIT-7")
    page.select_option("select[name=cathode]", str(sample.pk))
    page.click("main form button.primary[type=submit]")
    page.wait_for_load_state()
    cell = Cell.objects.get(name="CR2032-DIT-7")
    assert page.url.endswith(f"/catalogue/cells/{cell.pk}/")

    dataset_id = upload_dataset(page, project=project, cell=cell, path=spectra_file)

    # start a Compton job from the dataset page
    page.goto(f"/catalogue/datasets/{dataset_id}/")
    page.click("#dataset-analysis")
    page.select_option("select[name=kind]", "compton")
    # The planted spectra are background-free two-Gaussian profiles without the cathode's
    # core-electron tails, which the default side-band background fit expects; S is planted for
    # the uncorrected definition, so the job runs it.
    page.fill("[name=parameters]", '{"background": "none"}')
    page.click("#run-job")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.evaluate("window.__noReload = true")
    seen = set()
    for _ in range(240):
        status = page.inner_text("#job-live [data-field=status]").strip()
        seen.add(status)
        if status in {"succeeded", "failed", "cancelled"}:
            break
        page.wait_for_timeout(500)
    assert status == "succeeded", AnalysisJob.objects.get(pk=job_id).error
    assert page.evaluate("window.__noReload") is True  # updated live, no reload
    assert page.evaluate("document.querySelector('#job-live progress').value") == 1
    assert seen & {"queued", "running"}, seen

    # the result page renders the Li map with the planted values
    page.click("#job-live a.btn.primary")
    page.wait_for_selector("#figure-li_map[data-rendered='1']", timeout=60_000)
    z = page.evaluate("document.getElementById('figure-li_map').data[0].z")
    z = np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)
    assert z.shape == (80, 80) and np.isfinite(z).sum() > 6000
    assert np.nanmean(z[:4]) == pytest.approx(li_of(S_TOP), abs=0.02)
    assert np.nanmean(z[-4:]) == pytest.approx(li_of(S_BOTTOM), abs=0.02)
    x_title = page.evaluate("document.getElementById('figure-li_map').layout.xaxis.title.text")
    assert "mm" in x_title
    result = Result.objects.get(job_id=job_id)

    # a viewer sees the result but no run button
    vpage = login(browser, live_server, "victor")
    vpage.goto(f"/jobs/results/{result.pk}/")
    vpage.wait_for_selector("#figure-li_map[data-rendered='1']", timeout=60_000)
    vpage.goto(f"/jobs/datasets/{dataset_id}/run/")
    assert vpage.locator("#run-job").count() == 0
    vpage.goto(f"/jobs/{job_id}/")
    assert vpage.locator("#cancel-job").count() == 0

    # a user of another project gets 404
    opage = login(browser, live_server, "olga")
    for url in (f"/jobs/results/{result.pk}/", f"/jobs/{job_id}/", f"/api/v1/results/{result.pk}/"):
        assert opage.goto(url).status == 404, url


def _user(factories, name):
    user = factories.make_user(name)
    user.set_password(PASSWORD)
    user.save()
    return user

"""``import_beamtime`` with files straight from a beamtime: a HEXITEC ``.bin`` with a folder of
calibration arrays (-> a detector calibration of the beamtime, used by the events job), an
``.hxt`` and a Diamond NXtomo, all built byte by byte / with plain h5py here."""

from __future__ import annotations

import struct

import h5py
import numpy as np
import pytest
from catalogue.management.commands.import_beamtime import import_beamtime
from catalogue.models import Dataset, DetectorCalibration
from jobs import dispatch, execution
from jobs.models import JobStatus

pytestmark = pytest.mark.django_db

MANIFEST = """
beamtime: {facility: Diamond Light Source, beamline: I12, proposal: EE2}
samples: [{name: S1}]
cells: [{name: C1, cathode: S1}]
charge_states: [{cell: C1, state: charged}]
calibrations:
  - {name: HX-1, folder: cal}
files:
  - {path: raw/r1.bin, kind: xcs_frames, cell: C1, state: charged, region: 1, calibration: HX-1}
  - {path: raw/r1.hxt, kind: xcs_spectra, cell: C1, state: charged, region: 2}
  - {path: xct/k11.nxs, kind: xct_projections, cell: C1, state: charged}
"""


def _bin(path, hits):
    frames = np.zeros((4, 80, 80), np.uint16)
    for f, r, c, adu in hits:
        frames[f, r, c] = adu
    out = bytearray()
    for frame in frames:  # value k of a row -> column 20 * (k % 4) + k // 4
        for row in frame:
            out += struct.pack("<80H", *(int(row[20 * (k % 4) + k // 4]) for k in range(80)))
    path.write_bytes(bytes(out))


def _hxt(path):
    out = bytearray(b"HEXITECH") + struct.pack("<Q9Ii", 3, *range(9), 0)
    out += b"\x00" * 116 + struct.pack("<3I", 80, 80, 4) + struct.pack("<4d", 1, 2, 3, 4)
    out += np.zeros(80 * 80 * 4, "<f8").tobytes()
    path.write_bytes(bytes(out))


def _nxs(path):
    with h5py.File(path, "w") as f:
        f.create_group("entry1").attrs["NX_class"] = "NXentry"
        data = np.full((2 + 2 + 30, 3, 8), 400, np.uint16)
        data[:2], data[2:4] = 10, 3000
        f["entry1/det/data"] = data
        tomo = f.create_group("entry1/tomo_entry")
        tomo.attrs["NX_class"] = "NXsubentry"
        tomo["definition"] = "NXtomo"
        tomo["data/data"] = h5py.SoftLink("/entry1/det/data")
        tomo["data/image_key"] = np.r_[[2, 2, 1, 1], np.zeros(30)].astype(int)
        tomo["data/rotation_angle"] = np.r_[np.zeros(4), np.arange(30) * 6.0]


@pytest.fixture
def beamtime_dir(tmp_path):
    for sub in ("raw", "cal", "xct"):
        (tmp_path / sub).mkdir()
    (tmp_path / "manifest.yaml").write_text(MANIFEST)
    gradient = np.full((80, 80), 0.05)
    gradient[7, 7] = np.nan
    np.savetxt(tmp_path / "cal" / "gradients.txt", gradient)
    np.save(tmp_path / "cal" / "intercepts.npy", np.zeros((80, 80)))
    np.savetxt(tmp_path / "cal" / "thresholds.txt", np.full((80, 80), 100.0))
    _bin(tmp_path / "raw" / "r1.bin", [(0, 2, 61, 1010), (1, 40, 40, 2010), (3, 7, 7, 1000)])
    _hxt(tmp_path / "raw" / "r1.hxt")
    _nxs(tmp_path / "xct" / "k11.nxs")
    return tmp_path


def test_native_files_and_calibration_folder_import_and_feed_events_jobs(
    beamtime_dir, project, analyst
):
    summary = import_beamtime(beamtime_dir, project=project)
    assert summary.rejected == []
    (cal,) = DetectorCalibration.objects.filter(project=project)
    assert cal.name == "HX-1" and cal.bad_pixels == 1 and cal.beamtime.beamline == "I12"
    kinds = {d.kind: d for d in Dataset.objects.filter(project=project)}
    assert set(kinds) == {"xcs_frames", "xcs_spectra", "xct_projections"}
    raw = kinds["xcs_frames"]
    assert raw.metadata["detector_calibration"] == cal.pk and raw.metadata["frames"] == 4
    assert "4 frames" in raw.status_message
    assert "30 projections" in kinds["xct_projections"].status_message

    again = import_beamtime(beamtime_dir, project=project)  # idempotent
    assert again.created.get("DetectorCalibration", 0) == 0 and not again.new_datasets

    job, _ = dispatch.submit_job(project=project, user=analyst, kind="events", datasets=[raw],
                                 parameters={"bin_width_kev": 1.0})  # fmt: skip
    assert execution.execute_job(job.pk) == JobStatus.SUCCEEDED, job.error
    result = job.results.get()
    with h5py.File(result.output_file.path) as f:
        cube = f["pixel_histograms"][()]
    # 0.05 keV/ADU: 1010 ADU -> 50.5 keV (bin 50), 2010 -> 100.5 keV; pixel (7, 7) is bad
    assert cube[2, 61, 50] == 1 and cube[40, 40, 100] == 1 and cube.sum() == 2
    assert result.summary["pixels_bad_calibration"] == 1


def test_wrong_shape_calibration_creates_nothing(beamtime_dir, project):
    np.savetxt(beamtime_dir / "cal" / "gradients.txt", np.full((80, 79), 0.05))
    with pytest.raises(Exception, match=r"shape \(80, 79\)"):
        import_beamtime(beamtime_dir, project=project)
    assert not Dataset.objects.filter(project=project).exists()
    assert not DetectorCalibration.objects.exists()


def test_result_exports_listed_and_downloadable(
    beamtime_dir, project, analyst, api_as, client_as, outsider
):
    import_beamtime(beamtime_dir, project=project)
    raw = Dataset.objects.get(project=project, kind="xcs_frames")
    job, _ = dispatch.submit_job(project=project, user=analyst, kind="events", datasets=[raw])
    assert execution.execute_job(job.pk) == JobStatus.SUCCEEDED
    result = job.results.get()
    api = api_as(analyst)
    files = api.get(f"/api/v1/results/{result.pk}/").json()["files"]
    assert {"output", "nxs", "hxt"} <= set(files)
    response = api.get(files["hxt"]["url"])
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body[:8] == b"HEXITECH" and struct.unpack_from("<Q", body, 8)[0] == 3
    nxs = api.get(files["nxs"]["url"])
    assert nxs.status_code == 200 and b"".join(nxs.streaming_content)[:4] == b"\x89HDF"
    assert api.get(f"/api/v1/results/{result.pk}/export/tif/").status_code == 404  # no map
    assert api_as(outsider).get(files["hxt"]["url"]).status_code == 404
    page = client_as(analyst).get(result.get_absolute_url())
    assert files["hxt"]["url"] in page.content.decode()


def test_server_paths_are_not_job_parameters(beamtime_dir, project, analyst):
    from analysis_engine.errors import EngineInputError

    import_beamtime(beamtime_dir, project=project)
    raw = Dataset.objects.get(project=project, kind="xcs_frames")
    with pytest.raises(EngineInputError, match="has no option gradients_path"):
        dispatch.submit_job(project=project, user=analyst, kind="events", datasets=[raw],
                            parameters={"gradients_path": "/etc/hostname"})  # fmt: skip

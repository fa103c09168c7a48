"""Uploads of files straight from a beamtime: kind detected by content, status message says
what was found; a broken file is kept as ``rejected`` with the reason."""

from __future__ import annotations

import io
import struct

import h5py
import numpy as np
import pytest
from catalogue.models import Dataset

from tests.web.test_uploads import upload_all

pytestmark = pytest.mark.django_db


def _dataset(response) -> Dataset:
    return Dataset.objects.get(pk=int(response["CorreLi-Dataset-Id"]))


def _hxt(rows=80, cols=80, bins=5, *, cut=0) -> bytes:
    out = bytearray(b"HEXITECH") + struct.pack("<Q9Ii", 3, *range(9), 0)
    out += b"\x00" * 116 + struct.pack("<3I", rows, cols, bins)
    out += np.linspace(60.0, 62.0, bins).astype("<f8").tobytes()
    out += np.ones(rows * cols * bins, "<f8").tobytes()
    return bytes(out[: len(out) - cut])


def _diamond_nxs() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("entry1").attrs["NX_class"] = "NXentry"
        f["entry1/pco1_hw_hdf/data"] = np.full((2 + 3 + 36, 4, 6), 500, np.uint16)
        f["entry1/pco1_hw_hdf/data"][2:5] = 3000
        f["entry1/pco1_hw_hdf/data"][:2] = 10
        tomo = f.create_group("entry1/tomo_entry")
        tomo.attrs["NX_class"] = "NXsubentry"
        tomo["definition"] = "NXtomo"
        tomo["instrument/detector/image_key"] = np.r_[[2, 2, 1, 1, 1], np.zeros(36)].astype(int)
        tomo["instrument/detector/data"] = h5py.SoftLink("/entry1/pco1_hw_hdf/data")
        angles = tomo.create_dataset(
            "sample/rotation_angle", data=np.r_[np.zeros(5), np.arange(36) * 5.0]
        )
        angles.attrs["units"] = "deg"
    return buffer.getvalue()


@pytest.fixture
def analyst_client(client_as, analyst):
    return client_as(analyst)


def test_bin_upload_detected_with_frames(analyst_client, project):
    frames = np.zeros((3, 6400), "<u2")
    frames[:, 17] = 1200
    response, _ = upload_all(analyst_client, frames.tobytes() + b"\x00" * 10, filename="r.bin",
                             project=str(project.pk), dataset_kind="other")  # fmt: skip
    dataset = _dataset(response)
    assert (dataset.status, dataset.kind) == ("ready", "xcs_frames"), dataset.status_message
    assert "3 frames" in dataset.status_message and "10 bytes ignored" in dataset.status_message


def test_hxt_upload_reports_energy_range(analyst_client, project):
    response, _ = upload_all(analyst_client, _hxt(), filename="s.hxt", project=str(project.pk),
                             dataset_kind="xcs_spectra")  # fmt: skip
    dataset = _dataset(response)
    assert dataset.status == "ready", dataset.status_message
    assert "5 bins, 60-62 keV" in dataset.status_message


def test_truncated_hxt_rejected_with_reason(analyst_client, project):
    response, _ = upload_all(analyst_client, _hxt(cut=8), filename="s.hxt",
                             project=str(project.pk), dataset_kind="other")  # fmt: skip
    dataset = _dataset(response)
    assert dataset.status == "rejected" and "truncated" in dataset.status_message


def test_diamond_nxtomo_upload_reports_angles_flats_darks(analyst_client, project):
    response, _ = upload_all(analyst_client, _diamond_nxs(), filename="k11.nxs",
                             project=str(project.pk), dataset_kind="other")  # fmt: skip
    dataset = _dataset(response)
    assert (dataset.status, dataset.kind) == ("ready", "xct_projections"), dataset.status_message
    message = dataset.status_message
    assert "36 projections at 0-175 deg (180 deg scan), 3 flats, 2 darks" in message
    assert "/entry1/tomo_entry" in message

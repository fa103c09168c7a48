"""``demo-data --native-formats``: the twin's files converted to .bin/.hxt/Diamond NXtomo give
the same spectra and sinograms as the originals (the originals are the reference route)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import yaml

from analysis_engine.events.commands import run_events
from analysis_engine.io.hexitec_native import read_hxt
from analysis_engine.io.manifest import read_manifest
from analysis_engine.io.nxtomo import read_nxtomo_info, read_sinograms
from analysis_engine.io.sniff import sniff
from analysis_engine.synthetic.native_formats import (
    HXT_BIN_KEV,
    HXT_RANGE_KEV,
    pack_events_into_frames,
    write_native_formats,
)


def _events(rng, n_frames=3000):
    """Sparse clusters of 1-3 pixels, crowded into a 12 x 12 hot spot and spread elsewhere."""
    frames, rows, cols, adus = [], [], [], []
    for f in range(n_frames):
        taken = set()
        for _ in range(rng.integers(0, 3)):
            hot = rng.random() < 0.7
            r0 = int(rng.integers(30, 42) if hot else rng.integers(0, 80))
            c0 = int(rng.integers(30, 42) if hot else rng.integers(0, 80))
            for dr, dc in [(0, 0), (0, 1), (1, 0)][: rng.integers(1, 4)]:
                r, c = min(r0 + dr, 79), min(c0 + dc, 79)
                if (r, c) in taken:
                    continue
                taken.add((r, c))
                frames.append(f)
                rows.append(r)
                cols.append(c)
                adus.append(int(rng.integers(300, 3000)))
    return (np.array(frames, np.uint32), np.array(rows, np.uint8), np.array(cols, np.uint8),
            np.array(adus, np.uint16))  # fmt: skip


@pytest.fixture()
def mini_beamtime(tmp_path):
    rng = np.random.default_rng(3)
    frame, row, col, adu = _events(rng)
    gain = 0.045 + 0.002 * rng.random((80, 80))
    offset = rng.normal(0, 0.3, (80, 80))
    gain[5, 5] = np.nan  # a bad pixel in the source calibration
    (tmp_path / "xcsi").mkdir()
    with h5py.File(tmp_path / "xcsi" / "c_r1.h5", "w") as f:  # event-list layout by hand
        for name, arr in (("frame", frame), ("row", row), ("col", col), ("adu", adu)):
            f[f"events/{name}"] = arr
        f["calibration/gain_kev_per_adu"] = gain
        f["calibration/offset_kev"] = offset
        f.attrs.update(rows=80, cols=80, frame_rate_hz=9000.0, n_frames=3000)
    (tmp_path / "xct").mkdir()
    n = 2 + 3 + 40
    data = rng.integers(100, 1000, (n, 4, 6)).astype(np.uint16)
    data[2:5] = 3000
    with h5py.File(tmp_path / "xct" / "c.nxs", "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["definition"] = "NXtomo"
        entry["data/data"] = data
        entry["data/image_key"] = np.r_[[2, 2, 1, 1, 1], np.zeros(40)].astype(np.int32)
        entry["data/rotation_angle"] = np.r_[np.zeros(5), np.arange(40) * 4.5]
    manifest = {
        "beamtime": {"facility": "Test", "beamline": "I12"},
        "samples": [{"name": "S"}],
        "cells": [{"name": "C", "cathode": "S"}],
        "charge_states": [{"cell": "C", "state": "charged"}],
        "files": [
            {"path": "xcsi/c_r1.h5", "kind": "xcs_events", "cell": "C", "state": "charged",
             "region": 1},
            {"path": "xct/c.nxs", "kind": "xct_projections", "cell": "C", "state": "charged"},
        ],
    }  # fmt: skip
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return tmp_path, data


def test_native_twin_gives_the_same_spectra_and_sinograms(mini_beamtime, tmp_path):
    root, data = mini_beamtime
    result = write_native_formats(root)
    native = root / "native"
    manifest = read_manifest(native)
    (cal,) = manifest.calibrations
    by_kind = {f.kind: f for f in manifest.files}
    assert by_kind["xcs_frames"].calibration == cal.name

    kw = {"bin_width_kev": 0.5, "range_kev": (0.0, 160.0), "charge_sharing": "paper"}
    ref = run_events(root / "xcsi/c_r1.h5", tmp_path / "ref.h5", **kw)
    got = run_events(by_kind["xcs_frames"].path, tmp_path / "got.h5", gradients_path=cal.gradients,
                     intercepts_path=cal.intercepts, thresholds_path=cal.thresholds, **kw)  # fmt: skip
    assert got["clusters"] == ref["clusters"] and got["events_counted"] == ref["events_counted"]
    assert got["pixels_bad_calibration"] == 1
    assert got["frames"] < 3000 / 4  # packed
    with h5py.File(tmp_path / "ref.h5") as a, h5py.File(tmp_path / "got.h5") as b:
        np.testing.assert_array_equal(a["pixel_histograms"][()], b["pixel_histograms"][()])

    hxt = by_kind["xcs_spectra"].path
    run_events(root / "xcsi/c_r1.h5", tmp_path / "h.h5", bin_width_kev=HXT_BIN_KEV,
               range_kev=HXT_RANGE_KEV)  # fmt: skip
    energy, counts, _ = read_hxt(hxt)
    with h5py.File(tmp_path / "h.h5") as f:
        np.testing.assert_array_equal(counts, f["pixel_histograms"][()])
        np.testing.assert_allclose(energy, f["energy_bins"][()])

    nxs = by_kind["xct_projections"].path
    info = read_nxtomo_info(nxs)
    assert info.entry_path == "/entry1/tomo_entry"
    np.testing.assert_array_equal(read_sinograms(nxs), np.moveaxis(data[5:], 1, 0))
    assert {sniff(native / f.relative_path).kind for f in manifest.files} == {
        "xcs_frames", "xcs_spectra", "xct_projections"}  # fmt: skip
    assert "native/manifest.yaml" in result["files"]


def test_packing_never_merges_clusters():
    # two frames whose clusters would touch if merged stay in separate output frames
    frame = np.array([0, 1, 2], np.uint32)
    row = np.array([10, 11, 40])
    col = np.array([10, 11, 40])
    out = pack_events_into_frames(frame, row, col, np.array([5, 6, 7], np.uint16))
    assert out.shape[0] == 2
    assert out[0, 10, 10] == 5 and out[0, 40, 40] == 7 and out[1, 11, 11] == 6

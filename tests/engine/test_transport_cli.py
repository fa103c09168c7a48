"""The transport commands: files written, summaries, exit statuses (CONTRACTS.md)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from analysis_engine.cli import main
from analysis_engine.errors import EngineInputError
from analysis_engine.transport.commands import run_eis_sim, run_tortuosity, run_transport_table


@pytest.fixture
def channel_volume(tmp_path):
    vol = np.zeros((20, 6, 6), dtype=np.uint8)
    vol[:, 1:3, 1:3] = 1
    vol[:, 4, 4] = 1
    path = tmp_path / "vol.h5"
    with h5py.File(path, "w") as f:
        f["/pores"] = vol
    return f"{path}:/pores", vol


def test_run_tortuosity_writes_fields(channel_volume, tmp_path):
    spec, vol = channel_volume
    out = tmp_path / "tau.h5"
    calls = []
    summary = run_tortuosity(spec, out, axis=0, progress=lambda f, m: calls.append(f))
    assert summary["tau"] == pytest.approx(1.0, abs=1e-6)
    assert summary["porosity"] == pytest.approx(vol.mean())
    assert summary["d_eff_ratio"] == pytest.approx(vol.mean(), rel=1e-6)
    assert summary["axis"] == 0 and summary["backend"] == "native"
    assert calls and all(0 <= f <= 1 for f in calls)
    with h5py.File(out) as f:
        assert f["/concentration"].shape == vol.shape
        assert f["/flux"].shape == (3, *vol.shape)
        np.testing.assert_allclose(f["/flux_magnitude"][()][vol == 1], 1.0, atol=1e-5)
        assert f.attrs["tau"] == pytest.approx(summary["tau"])


def test_run_eis_sim_straight_channel(channel_volume, tmp_path):
    spec, vol = channel_volume
    out = tmp_path / "eis.h5"
    summary = run_eis_sim(spec, out, axis=0, voxel_size_um=10.0, n_frequencies=12)
    assert summary["tau"] == pytest.approx(1.0, rel=5e-3)
    assert summary["tau_steady"] == pytest.approx(1.0, abs=1e-6)
    assert summary["d_directional_cm2_s"] == pytest.approx(1.39e-7 * vol.mean(), rel=5e-3)
    length_cm = 20 * 10e-4
    assert summary["omega_c_rad_s"] == pytest.approx(1.39e-7 / length_cm**2)
    with h5py.File(out) as f:
        freq = f["/impedance/frequency"][()]
        z = f["/impedance/z_real"][()] + 1j * f["/impedance/z_imag"][()]
        assert freq.shape == z.shape == (12,)
        assert np.all(np.diff(freq) > 0)
        # omega_c lies inside the simulated span
        assert freq[0] * 2 * np.pi < summary["omega_c_rad_s"] < freq[-1] * 2 * np.pi
        assert z[0].real == pytest.approx(1 / vol.mean(), rel=1e-3)
        assert np.all(z.imag < 0)


def test_run_transport_table(channel_volume, tmp_path):
    spec, _ = channel_volume
    out = tmp_path / "table.h5"
    summary = run_transport_table(spec, out, regions=2, in_plane_axis=1)
    assert len(summary["rows"]) == 4
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["/tau_through_plane"][()], 1.0, atol=1e-6)
        assert np.all(np.isinf(f["/tau_in_plane"][()]))  # channels only: no in-plane path
        rows = json.loads(f.attrs["rows"])
        assert rows[1]["tau"] is None and rows[1]["percolating"] is False


def test_failed_run_leaves_no_output(tmp_path):
    blocked = np.ones((10, 5, 5), dtype=np.uint8)
    blocked[4] = 0
    np.save(tmp_path / "blocked.npy", blocked)
    out = tmp_path / "tau.h5"
    with pytest.raises(EngineInputError, match="percolate"):
        run_tortuosity(tmp_path / "blocked.npy", out, axis=0)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "blocked.npy"]


def test_cli_exit_statuses(tmp_path, capsys):
    vol = np.zeros((10, 5, 5), dtype=np.uint8)
    vol[:, 2, 2] = 1
    np.save(tmp_path / "ok.npy", vol)
    np.save(tmp_path / "gray.npy", np.linspace(0, 1, 250).reshape(10, 5, 5))
    assert (
        main(["tortuosity", str(tmp_path / "ok.npy"), "-o", str(tmp_path / "t.h5"), "--axis", "z"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["tau"] == pytest.approx(1.0, abs=1e-6) and summary["axis"] == 0
    assert (
        main(
            ["tortuosity", str(tmp_path / "gray.npy"), "-o", str(tmp_path / "g.h5"), "--axis", "0"]
        )
        == 2
    )
    assert "not binary" in capsys.readouterr().err
    assert not (tmp_path / "g.h5").exists()
    bad_axis = ["tortuosity", str(tmp_path / "ok.npy"), "-o", str(tmp_path / "t.h5"), "--axis", "w"]
    assert main(bad_axis) == 2
    assert "axis must be 0, 1, 2 or z, y, x" in capsys.readouterr().err

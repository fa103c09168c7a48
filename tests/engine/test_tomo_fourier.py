"""The Fourier-space (gridrec-style NUFFT) backend against independent routes.

Expected values come from elsewhere than the code under test: scikit-image's ``radon`` /
``iradon`` (a peer implementation), the analytic projection of a uniform disc (chord length
2 sqrt(R^2 - s^2) times mu), astra-toolbox's strip projector on the electrode phantom, and the
direct back projector of this package as the reference the backend must agree with.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from analysis_engine.synthetic.phantom import dit_cathode
from analysis_engine.synthetic.projections import forward_project
from analysis_engine.tomo.backends import available_backends, fbp

pytestmark = pytest.mark.skipif(
    "fourier" not in available_backends(), reason="finufft is not installed"
)


def _inside(size: int, radius: float) -> np.ndarray:
    mid = (size - 1) / 2
    y, x = np.ogrid[:size, :size]
    return (x - mid) ** 2 + (y - mid) ** 2 < radius**2


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("size", [128, 129])
def test_shepp_logan_against_skimage(size):
    image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True).astype(np.float32)
    theta = np.arange(360) * 0.5
    sinogram = radon(image, theta=theta, circle=True)  # (cols, angles), axis at col size // 2
    expected = iradon(sinogram, theta=theta, circle=True, filter_name="ramp")
    recon = fbp(sinogram.T, np.deg2rad(theta), size // 2, backend="fourier")
    native = fbp(sinogram.T, np.deg2rad(theta), size // 2, backend="native")
    inside = _inside(size, size / 2 - 3)
    assert _pearson(recon[inside], native[inside]) > 0.99
    assert _pearson(recon[inside], image[inside]) > 0.92  # the phantom itself, no filter bias
    # skimage's iradon puts pixel (N - 1) / 2 - ... on a different half-pixel for even sizes;
    # compare where both agree on the grid (odd size) and only loosely otherwise
    threshold = 0.99 if size % 2 else 0.9
    assert _pearson(recon[inside], expected[inside]) > threshold
    # the mean attenuation is the integral of the projections: same to 1 %
    assert recon[inside].mean() == pytest.approx(image[inside].mean(), rel=0.01)


@pytest.mark.parametrize(("cols", "axis"), [(101, 50.0), (120, 47.3), (120, 71.6)])
def test_uniform_discs_analytic_projection(cols, axis):
    # three slices (two share a packed complex transform, one alone), each a disc of radius R
    # centred on the axis with its own mu; projection p(s) = 2 mu sqrt(R^2 - s^2)
    radius = 30.0
    mus = np.array([0.02, 0.05, 0.011])
    n_angles = 400
    angles = np.arange(n_angles) * np.pi / n_angles
    s = np.arange(cols) - axis
    chord = 2.0 * np.sqrt(np.clip(radius**2 - s**2, 0.0, None))
    sinograms = (mus[:, None, None] * chord[None, None, :]).repeat(n_angles, axis=1)
    size = 96
    recon = fbp(sinograms.astype(np.float32), angles, axis, size=size, backend="fourier")
    core = _inside(size, radius - 3)
    ring = _inside(size, size / 2 - 2) & ~_inside(size, radius + 3)
    for index, mu in enumerate(mus):
        assert recon[index][core].mean() == pytest.approx(mu, rel=0.01)
        assert np.std(recon[index][core]) < 0.03 * mu
        # outside the disc: band-limited (trigonometric) interpolation of the filtered
        # projections rings around the sharp edge (measured: mean |f| 1.0-1.3 % of mu, max 5 %;
        # the linear-interpolating direct back projector: 0.1 % and 0.5-2 %)
        assert np.abs(recon[index][ring]).mean() < 0.02 * mu
        assert np.abs(recon[index][ring]).max() < 0.08 * mu


def test_electrode_phantom_agrees_with_native():
    phantom = dit_cathode((8, 128, 128), thickness_axis=1, seed=3)
    volume = (phantom.solid_mask[3:5] * 0.02).astype(np.float32)
    angles = np.arange(300) * np.pi / 300
    sinograms = forward_project(volume, angles, detector_cols=140, center_of_rotation=70.4)
    recon = fbp(sinograms, angles, 70.4, size=128, backend="fourier")
    native = fbp(sinograms, angles, 70.4, size=128, backend="native")
    inside = _inside(128, 60)
    for index in range(2):
        assert _pearson(recon[index][inside], native[index][inside]) > 0.99
        assert _pearson(recon[index][inside], volume[index][inside]) > 0.9


def test_360_degree_scan_weighted_like_180():
    radius, mu, n_angles = 20.0, 0.03, 360
    angles = np.arange(n_angles) * 2 * np.pi / n_angles
    s = np.arange(64) - 31.5
    chord = 2.0 * mu * np.sqrt(np.clip(radius**2 - s**2, 0.0, None))
    recon = fbp(np.tile(chord, (n_angles, 1)), angles, 31.5, backend="fourier")
    assert recon[_inside(64, radius - 3)].mean() == pytest.approx(mu, rel=0.01)

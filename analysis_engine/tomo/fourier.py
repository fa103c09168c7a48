"""Fourier-space filtered back projection: the back projection as one non-uniform FFT.

By the Fourier slice theorem, filtered back projection of parallel-beam sinograms is

    f(x, y) = sum_theta dtheta sum_k dw H(w_k) P_theta(w_k) exp(2 pi i w_k (x cos theta + y sin theta))

where ``P_theta(w)`` is the 1D Fourier transform of the projection at angle ``theta`` taken
about the rotation axis and ``H`` the ramp filter. The inner sum over polar samples
``(w cos theta, w sin theta)`` onto the Cartesian pixel grid is a type-1 non-uniform FFT
(polar -> Cartesian). This is the scheme of gridrec (Dowd et al. 1999, TomoPy's default
algorithm): grid the polar samples onto an oversampled Cartesian Fourier grid with a compact
kernel, one 2D inverse FFT, and divide by the kernel's transform (deapodisation). The gridding,
FFT and deapodisation are done by FINUFFT (Barnett, Magland & af Klinteberg 2019), whose
"exponential of semicircle" kernel is a close approximation of the Kaiser-Bessel window, with a
requested relative accuracy of :data:`NUFFT_TOLERANCE`.

Cost is O(n_angles n_cols + N^2 log N) per slice against O(n_angles N^2) for direct back
projection, so the gain grows with the detector width (``benchmarks/bench_fourier.py``).

The geometry, filters and scaling are those of :func:`analysis_engine.tomo.backends.fbp`: the
same input gives the same slices up to interpolation differences (the direct back projector
interpolates linearly between detector pixels; the Fourier route is band-limited).

References
----------
B. A. Dowd et al., Proc. SPIE 3772 (1999), "Developments in synchrotron x-ray computed
microtomography at the National Synchrotron Light Source" (gridrec); A. H. Barnett, J. Magland,
L. af Klinteberg, SIAM J. Sci. Comput. 41, C479 (2019) (FINUFFT); Kak & Slaney (1988) Ch. 3.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from analysis_engine.errors import EngineInputError

__all__ = ["NUFFT_TOLERANCE", "NUFFT_UPSAMPLING", "fourier_available", "fourier_backproject"]

#: Relative accuracy asked of the non-uniform FFT: below the interpolation differences between
#: back projectors (about 1e-2) and the noise of any measured scan.
NUFFT_TOLERANCE = 1e-3

#: Oversampling of the Cartesian Fourier grid. 1.25 (instead of the classical 2) makes the 2D
#: FFT, the dominant cost at wide detectors, 2.5x smaller for a slightly wider kernel.
NUFFT_UPSAMPLING = 1.25


def fourier_available() -> bool:
    """Whether the ``finufft`` package is importable."""
    try:
        import finufft  # noqa: F401
    except ImportError:
        return False
    return True


def fourier_backproject(
    filtered: np.ndarray,
    angles_rad: np.ndarray,
    center: float,
    size: int,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """Back-project ramp-filtered sinograms through a type-1 NUFFT (polar -> Cartesian).

    Parameters
    ----------
    filtered : ndarray, shape (n_slices, n_angles, n_cols), float32
        Ramp-filtered line integrals (:func:`analysis_engine.tomo.backends.filter_sinograms`).
    angles_rad : ndarray, shape (n_angles,)
        Projection angles in radians (evenly spread over 180 or 360 deg).
    center : float
        Detector column hit by the rotation axis (pixels).
    size : int
        Width of the square output slices, centred on the axis.
    threads
        Threads for the FFTs and the NUFFT (default: all cores).

    Returns
    -------
    ndarray, shape (n_slices, size, size), float32
        Attenuation per pixel (1 / pixel); the same quadrature weight (pi / n_angles) as the
        direct back projectors. Values outside the circle of radius ``size / 2`` are not
        meaningful (the caller masks them).

    Notes
    -----
    Each filtered projection is cut to a window of ``L`` detector samples centred on the axis
    (zero beyond the detector, as the direct back projector reads zero there) and expanded in
    its ``L`` discrete Fourier modes ``w_k = k / L`` about the axis: the back projection then
    evaluates the band-limited (trigonometric) interpolant of the samples where the direct
    back projector interpolates linearly. The Nyquist mode is split evenly between
    ``w = +-1/2`` so that every slice's sum is exactly real; two slices then share one complex
    transform (slice a + i slice b), as gridrec does.
    """
    try:
        import finufft
    except ImportError:  # pragma: no cover - guarded by fourier_available()
        raise EngineInputError(
            "the fourier backend needs the finufft package (pip install finufft)"
        ) from None
    from analysis_engine.tomo.backends import engine_threads

    threads = threads or engine_threads()
    n_slices, n_angles, n_cols = filtered.shape
    window = scipy.fft.next_fast_len(size + 4)
    window += window % 2
    half = window // 2
    # window[j] = filtered[j + offset]; the axis sits at window position half + frac
    offset = int(np.floor(center)) - half
    axis_in_window = center - offset
    lo, hi = max(0, offset), min(n_cols, offset + window)
    # Modes k = -L/2 .. L/2 (L + 1 of them; the two ends are the same DFT coefficient, halved)
    k = np.arange(-half, half + 1)
    omega = k / window
    weight = np.ones(k.size)
    weight[0] = weight[-1] = 0.5
    # DFT about window position 0 -> about the axis (phase ramp); angular quadrature
    # pi / n_angles (180 and 360 deg, see backends) and the 1 / L of the inverse DFT.
    scale = np.pi / n_angles / window
    # Output mode m (integer, -size//2 ..) lies m + delta from the axis, with
    # delta = size//2 - (size - 1)/2 (0.5 for even sizes). Pixel (row r, col c) is at
    # x = c - (N-1)/2, y = (N-1)/2 - r; finufft's first mode axis is the row.
    delta = size // 2 - 0.5 * (size - 1)
    cos_t = np.cos(angles_rad)[:, None]
    sin_t = np.sin(angles_rad)[:, None]
    two_pi_w = 2.0 * np.pi * omega[None, :]
    factor = (weight * scale)[None, :] * np.exp(
        1j * two_pi_w * (axis_in_window + delta * (cos_t - sin_t))
    )
    factor = factor.astype(np.complex64)  # (n_angles, L + 1)
    plan = finufft.Plan(
        1,
        (size, size),
        n_trans=1,
        eps=NUFFT_TOLERANCE,
        isign=1,
        dtype="complex64",
        nthreads=threads,
        upsampfac=NUFFT_UPSAMPLING,
    )
    plan.setpts(
        (-two_pi_w * sin_t).ravel().astype(np.float32),
        (two_pi_w * cos_t).ravel().astype(np.float32),
    )
    del cos_t, sin_t, two_pi_w

    def spectrum(index: int) -> np.ndarray:
        rows = np.zeros((n_angles, window), dtype=np.float32)
        rows[:, lo - offset : hi - offset] = filtered[index, :, lo:hi]
        dft = scipy.fft.fft(rows, axis=-1, workers=threads)  # k = 0 .. L-1
        dft = np.concatenate([dft[:, half:], dft[:, : half + 1]], axis=1)  # k = -L/2 .. L/2
        return dft.astype(np.complex64, copy=False) * factor

    out = np.zeros((n_slices, size, size), dtype=np.float32)
    for first in range(0, n_slices, 2):
        strengths = spectrum(first)
        if first + 1 < n_slices:
            strengths += np.complex64(1j) * spectrum(first + 1)
        image = plan.execute(strengths.ravel())
        out[first] = image.real
        if first + 1 < n_slices:
            out[first + 1] = image.imag
    return out

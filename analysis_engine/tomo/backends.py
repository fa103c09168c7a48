"""Filtered back projection (FBP) for parallel-beam sinograms, behind one interface.

Every backend takes a chunk of sinograms ``(n_slices, n_angles, n_cols)`` of line integrals
(after flat/dark correction and minus log), the projection angles in radians and the centre of
rotation in detector pixels, and returns ``(n_slices, N, N)`` float32 slices of the linear
attenuation coefficient in units of 1 / pixel (multiply by 1 / pixel size for 1 / m).

Geometry (shared by every backend and by :mod:`analysis_engine.synthetic.projections`): for a
pixel at column ``c`` and row ``r`` of an ``N x N`` slice whose centre ``(N - 1) / 2`` lies on
the rotation axis, the ray at angle ``theta`` hits detector position
``u = (c - (N-1)/2) cos(theta) + ((N-1)/2 - r) sin(theta) + center`` (astra-toolbox's convention).

Backends
--------
``native``
    A numba back projector of this package, parallel over output rows and vectorised over the
    slices of a chunk (each ray position is computed once for all slices). It is the fastest
    CPU backend measured in ``benchmarks/bench_tomo.py``.
``astra``
    astra-toolbox ``FBP`` (CPU, ``linear`` projector) or ``FBP_CUDA`` when ``astra.use_cuda()``.
``algotom``
    ``algotom.rec.reconstruction.fbp_reconstruction`` (numba CPU or numba CUDA).
``tomopy``
    ``tomopy.recon(algorithm="fbp")`` when tomopy happens to be installed.
``fourier``
    The same filtered back projection evaluated in Fourier space, gridrec-style: the back
    projection is one type-1 non-uniform FFT (polar -> Cartesian) by FINUFFT
    (:mod:`analysis_engine.tomo.fourier`). O(N^2 log N) per slice instead of O(n_angles N^2):
    the fastest CPU backend for wide detectors (``benchmarks/bench_fourier.py``).

References
----------
Kak & Slaney, *Principles of Computerized Tomographic Imaging* (1988), Eq. 3.61 (the discrete
ramp filter used here); van Aarle et al., Opt. Express 24, 25129 (2016) (astra-toolbox);
Nghia T. Vo et al., J. Synchrotron Rad. 29 (2022) (algotom).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
from scipy import ndimage

from analysis_engine.errors import EngineInputError
from analysis_engine.tomo.fourier import fourier_available, fourier_backproject

__all__ = [
    "FILTERS",
    "FBPBackend",
    "available_backends",
    "default_backend",
    "get_backend",
    "ramp_filter",
    "filter_sinograms",
    "fbp",
]


def engine_threads() -> int:
    """Threads the reconstruction uses by default: ``CORRELI_ENGINE_THREADS`` when set, else
    the cores this process may run on (its CPU affinity, so ``taskset`` and cpusets count)."""
    text = os.environ.get("CORRELI_ENGINE_THREADS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            raise EngineInputError(
                f"CORRELI_ENGINE_THREADS must be a positive integer, got {text!r}"
            ) from None
        if value < 1:
            raise EngineInputError(f"CORRELI_ENGINE_THREADS must be at least 1, got {value}")
        return value
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")

# Preference order on a CPU-only machine, from benchmarks/bench_tomo.py (2 cores, 1800 angles):
# native is ~10x faster than astra's CPU FBP and faster than algotom's numba back projector.
_CPU_PREFERENCE = ("native", "fourier", "algotom", "astra", "tomopy")


def ramp_filter(n_cols: int, *, filter_name: str = "ram-lak") -> tuple[np.ndarray, int]:
    """Frequency response of the discrete ramp filter, with an optional apodisation window.

    Parameters
    ----------
    n_cols
        Detector width in pixels.
    filter_name
        One of :data:`FILTERS`.

    Returns
    -------
    response : ndarray, shape (n_pad // 2 + 1,), float64
        Real response for ``numpy.fft.rfft`` of a zero-padded row.
    n_pad : int
        Padded length (a fast FFT size >= 2 * n_cols, so the circular convolution does not
        wrap around).

    Notes
    -----
    Spatial-domain ramp of Kak & Slaney Eq. 3.61 (h[0] = 1/4, h[k] = -1/(pi k)^2 for odd k),
    which avoids the DC bias of sampling ``|omega|`` directly. Windows follow scikit-image's
    ``iradon`` definitions.
    """
    if filter_name not in FILTERS:
        raise EngineInputError(
            f"unknown FBP filter {filter_name!r}: expected one of {', '.join(FILTERS)}"
        )
    n_pad = scipy.fft.next_fast_len(max(64, 2 * n_cols), real=True)
    k = np.arange(n_pad)
    k = np.minimum(k, n_pad - k)
    h = np.zeros(n_pad)
    h[0] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    response = np.real(np.fft.rfft(h))
    freq = np.fft.rfftfreq(n_pad)  # cycles / pixel, 0 .. 0.5
    omega = np.pi * freq
    if filter_name == "shepp-logan":
        with np.errstate(invalid="ignore", divide="ignore"):
            response[1:] *= np.sin(omega[1:]) / omega[1:]
    elif filter_name == "cosine":
        response *= np.cos(omega)
    elif filter_name == "hamming":
        response *= 0.54 + 0.46 * np.cos(2.0 * omega)
    elif filter_name == "hann":
        response *= 0.5 + 0.5 * np.cos(2.0 * omega)
    return response, n_pad


def filter_sinograms(
    sinograms: np.ndarray, *, filter_name: str = "ram-lak", workers: int | None = None
) -> np.ndarray:
    """Ramp-filter sinograms along the detector axis (the "F" of FBP).

    Parameters
    ----------
    sinograms : ndarray, shape (..., n_cols)
        Line integrals; the last axis is the detector.
    filter_name
        One of :data:`FILTERS`.
    workers
        FFT threads (default: all cores).

    Returns
    -------
    ndarray, same shape, float32
    """
    n_cols = sinograms.shape[-1]
    response, n_pad = ramp_filter(n_cols, filter_name=filter_name)
    workers = workers or engine_threads()
    spectrum = scipy.fft.rfft(
        sinograms.astype(np.float32, copy=False), n=n_pad, axis=-1, workers=workers
    )
    spectrum *= response.astype(np.float32)
    return scipy.fft.irfft(spectrum, n=n_pad, axis=-1, workers=workers)[..., :n_cols].astype(
        np.float32, copy=False
    )


@numba.njit(parallel=True, fastmath=True, cache=True)
def _backproject_rows(filtered, cos_t, sin_t, center, out):  # pragma: no cover - numba
    """Back-project ``filtered`` (n_angles, n_cols, n_slices) into ``out`` (N, N, n_slices).

    Parallel over output rows, so no two threads write the same pixel; the innermost loop
    runs over the slices of the chunk, which share every ray position (SIMD-friendly).
    Pixels outside the circle seen at every angle are left at zero.
    """
    n_angles, n_cols, n_slices = filtered.shape
    size = out.shape[0]
    mid = 0.5 * (size - 1)
    radius = 0.5 * (size - 1) + 0.5
    last = n_cols - 1
    for row in numba.prange(size):
        y = mid - row
        half = radius * radius - y * y
        if half <= 0.0:
            continue
        half_width = math.sqrt(half)
        col_lo = max(0, int(math.ceil(mid - half_width)))
        col_hi = min(size, int(math.floor(mid + half_width)) + 1)
        acc = np.zeros((size, n_slices), dtype=np.float32)
        for a in range(n_angles):
            c = cos_t[a]
            base = y * sin_t[a] + center - mid * c
            for col in range(col_lo, col_hi):
                u = col * c + base
                if u >= 0.0 and u < last:
                    i0 = int(u)
                    w = np.float32(u - i0)
                    w0 = np.float32(1.0) - w
                    for s in range(n_slices):
                        acc[col, s] += w0 * filtered[a, i0, s] + w * filtered[a, i0 + 1, s]
        for col in range(col_lo, col_hi):
            for s in range(n_slices):
                out[row, col, s] = acc[col, s]


def _native_fbp(sinograms, angles_rad, center, size, filter_name):
    filtered = filter_sinograms(sinograms, filter_name=filter_name)
    # (n_slices, n_angles, n_cols) -> (n_angles, n_cols, n_slices): slices innermost
    filtered = np.ascontiguousarray(np.moveaxis(filtered, 0, -1))
    out = np.zeros((size, size, sinograms.shape[0]), dtype=np.float32)
    _backproject_rows(
        filtered,
        np.cos(angles_rad).astype(np.float64),
        np.sin(angles_rad).astype(np.float64),
        float(center),
        out,
    )
    out *= np.float32(_angular_weight(angles_rad))
    return np.ascontiguousarray(np.moveaxis(out, -1, 0))


def _angular_weight(angles_rad: np.ndarray) -> float:
    """Quadrature weight of the angular integral, pi / n_angles.

    Valid for evenly spread angles over 180 deg and, because a 360 deg scan sees every ray
    twice (half of the 2 pi integral), over 360 deg as well.
    """
    return np.pi / len(angles_rad)


def _centred_sinograms(sinograms: np.ndarray, center: float) -> tuple[np.ndarray, float]:
    """Pad (and spline-shift by the fractional part) so the axis is at the detector centre.

    For backends whose CPU path has no detector offset (astra's CPU FBP supports only the plain
    ``parallel`` geometry). Returns the padded sinograms and the residual centre, which is the
    new detector centre.
    """
    n_cols = sinograms.shape[-1]
    # new width W with (W - 1) / 2 == center + pad_left, pad_left >= 0, W >= n_cols + pad_left
    shift = 0.0
    twice = 2.0 * center
    frac = twice - math.floor(twice)
    if frac > 1e-6:  # shift the data by -frac/2 so that 2 * center becomes an integer
        shift = -0.5 * frac
        twice = math.floor(twice)
    left = max(0, int(round((n_cols - 1) - twice)))
    width = int(round(twice)) + 2 * left + 1
    right = width - left - n_cols
    if right < 0:
        right = 0
        width = left + n_cols
    padded = np.zeros(sinograms.shape[:-1] + (width,), dtype=np.float32)
    padded[..., left : left + n_cols] = sinograms
    if shift:
        # cubic-spline shift: less ringing at sharp edges than a Fourier shift
        padded = ndimage.shift(
            padded, (0,) * (padded.ndim - 1) + (shift,), order=3, mode="nearest"
        ).astype(np.float32, copy=False)
    return padded, 0.5 * (width - 1)


def _fourier_fbp(sinograms, angles_rad, center, size, filter_name):
    filtered = filter_sinograms(sinograms, filter_name=filter_name)
    out = fourier_backproject(filtered, angles_rad, center, size)
    _mask_outside_circle(out)
    return out


def _astra_fbp(sinograms, angles_rad, center, size, filter_name):
    import astra

    cuda = bool(astra.use_cuda())
    padded, _ = _centred_sinograms(sinograms, center)
    width = padded.shape[-1]
    proj_geom = astra.create_proj_geom("parallel", 1.0, width, np.asarray(angles_rad, float))
    vol_geom = astra.create_vol_geom(size, size)
    out = np.empty((sinograms.shape[0], size, size), dtype=np.float32)
    projector = None if cuda else astra.create_projector("linear", proj_geom, vol_geom)
    try:
        for i, sino in enumerate(padded):
            sino_id = astra.data2d.create("-sino", proj_geom, sino)
            rec_id = astra.data2d.create("-vol", vol_geom, 0.0)
            cfg = astra.astra_dict("FBP_CUDA" if cuda else "FBP")
            cfg["ProjectionDataId"] = sino_id
            cfg["ReconstructionDataId"] = rec_id
            cfg["FilterType"] = filter_name
            if projector is not None:
                cfg["ProjectorId"] = projector
            alg_id = astra.algorithm.create(cfg)
            try:
                astra.algorithm.run(alg_id)
                out[i] = astra.data2d.get(rec_id)
            finally:
                astra.algorithm.delete(alg_id)
                astra.data2d.delete([sino_id, rec_id])
    finally:
        if projector is not None:
            astra.projector.delete(projector)
    _mask_outside_circle(out)
    return out


def _algotom_fbp(sinograms, angles_rad, center, size, filter_name):
    from algotom.rec import reconstruction as rec

    n_slices, n_angles, n_cols = sinograms.shape
    if size != n_cols:
        raise EngineInputError("the algotom backend reconstructs slices as wide as the detector")
    filtered = filter_sinograms(sinograms, filter_name=filter_name)
    out = np.empty((n_slices, size, size), dtype=np.float32)
    angles = np.asarray(angles_rad, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # algotom's numba CPU back projector loops (in parallel) over angles and adds into one
        # image: run it single-threaded so concurrent additions cannot be lost.
        previous = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            for i in range(n_slices):
                out[i] = rec.back_projection_cpu(filtered[i], angles, np.float32(center))
        finally:
            numba.set_num_threads(previous)
    out *= np.float32(_angular_weight(angles_rad))
    _mask_outside_circle(out)
    return out


def _tomopy_fbp(sinograms, angles_rad, center, size, filter_name):
    import tomopy

    names = {
        "ram-lak": "ramlak",
        "shepp-logan": "shepp",
        "cosine": "cosine",
        "hamming": "hamming",
        "hann": "hann",
    }
    data = np.ascontiguousarray(np.moveaxis(sinograms, 0, 1))  # (angles, slices, cols)
    rec = tomopy.recon(
        data, np.asarray(angles_rad), center=center, algorithm="fbp", filter_name=names[filter_name]
    )
    rec = np.asarray(rec, dtype=np.float32)
    if rec.shape[-1] != size:
        raise EngineInputError("the tomopy backend reconstructs slices as wide as the detector")
    _mask_outside_circle(rec)
    return rec


def _mask_outside_circle(volume: np.ndarray) -> None:
    size = volume.shape[-1]
    mid = 0.5 * (size - 1)
    y, x = np.ogrid[:size, :size]
    outside = (x - mid) ** 2 + (y - mid) ** 2 > (mid + 0.5) ** 2
    volume[..., outside] = 0.0


def _astra_available() -> bool:
    try:
        import astra  # noqa: F401
    except ImportError:
        return False
    return True


def _algotom_available() -> bool:
    try:
        from algotom.rec import reconstruction  # noqa: F401
    except ImportError:
        return False
    return True


def _tomopy_available() -> bool:
    try:
        import tomopy  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class FBPBackend:
    """One FBP implementation: ``name``, whether it ``available()``, and ``reconstruct``.

    ``reconstruct(sinograms, angles_rad, center, *, size=None, filter_name="ram-lak")`` takes
    ``(n_slices, n_angles, n_cols)`` line integrals and returns ``(n_slices, size, size)``
    float32 attenuation per pixel; ``size`` defaults to ``n_cols``.
    """

    name: str
    description: str
    _available: Callable[[], bool]
    _run: Callable[..., np.ndarray]

    def available(self) -> bool:
        return bool(self._available())

    def reconstruct(
        self,
        sinograms: np.ndarray,
        angles_rad: np.ndarray,
        center: float,
        *,
        size: int | None = None,
        filter_name: str = "ram-lak",
    ) -> np.ndarray:
        return fbp(
            sinograms, angles_rad, center, size=size, filter_name=filter_name, backend=self.name
        )


_BACKENDS = {
    "native": FBPBackend("native", "numba FBP of analysis_engine (CPU)", lambda: True, _native_fbp),
    "astra": FBPBackend(
        "astra", "astra-toolbox FBP (CPU) / FBP_CUDA (GPU)", _astra_available, _astra_fbp
    ),
    "algotom": FBPBackend(
        "algotom", "algotom back_projection_cpu (numba)", _algotom_available, _algotom_fbp
    ),
    "tomopy": FBPBackend("tomopy", "tomopy.recon(algorithm='fbp')", _tomopy_available, _tomopy_fbp),
    "fourier": FBPBackend(
        "fourier",
        "Fourier-space FBP, gridrec-style non-uniform FFT by FINUFFT (CPU)",
        fourier_available,
        _fourier_fbp,
    ),
}


def available_backends() -> list[str]:
    """Names of the FBP backends importable here, fastest first."""
    return [name for name in _preference() if _BACKENDS[name].available()]


def _preference() -> tuple[str, ...]:
    try:
        import astra

        if astra.use_cuda():
            return ("astra",) + tuple(n for n in _CPU_PREFERENCE if n != "astra")
    except ImportError:
        pass
    return _CPU_PREFERENCE


def default_backend() -> str:
    """The fastest available backend (astra's FBP_CUDA on a GPU, else ``native``)."""
    return available_backends()[0]


def get_backend(name: str | None = None) -> FBPBackend:
    """Return the backend called ``name`` (``None`` or ``"auto"``: :func:`default_backend`)."""
    if name in (None, "", "auto"):
        name = default_backend()
    if name not in _BACKENDS:
        raise EngineInputError(
            f"unknown reconstruction backend {name!r}: expected one of {', '.join(_BACKENDS)}"
        )
    backend = _BACKENDS[name]
    if not backend.available():
        raise EngineInputError(
            f"reconstruction backend {name!r} is not installed here; available: "
            f"{', '.join(available_backends())}"
        )
    return backend


def fbp(
    sinograms: np.ndarray,
    angles_rad: np.ndarray,
    center: float,
    *,
    size: int | None = None,
    filter_name: str = "ram-lak",
    backend: str | None = None,
) -> np.ndarray:
    """Filtered back projection of a chunk of parallel-beam sinograms.

    Parameters
    ----------
    sinograms : ndarray, shape (n_slices, n_angles, n_cols) or (n_angles, n_cols)
        Line integrals (minus log of the normalised transmission), dimensionless.
    angles_rad : ndarray, shape (n_angles,)
        Projection angles in radians, covering 180 deg (or 360 deg, weighted by half).
    center : float
        Centre of rotation, detector pixels from the first column's centre.
    size
        Width of the square output slices (default ``n_cols``), centred on the axis.
    filter_name
        One of :data:`FILTERS`.
    backend
        A name from :func:`available_backends` (default: the fastest available).

    Returns
    -------
    ndarray, shape (n_slices, size, size) (or (size, size)), float32
        Linear attenuation coefficient per pixel (1 / pixel); zero outside the reconstruction
        circle.

    Raises
    ------
    EngineInputError
        Mismatched angles, a centre outside the detector, an unknown or missing backend.
    """
    chosen = get_backend(backend)
    sinograms = np.asarray(sinograms, dtype=np.float32)
    single = sinograms.ndim == 2
    if single:
        sinograms = sinograms[None]
    if sinograms.ndim != 3:
        raise EngineInputError(
            f"sinograms must be (n_slices, n_angles, n_cols), got shape {sinograms.shape}"
        )
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    n_slices, n_angles, n_cols = sinograms.shape
    if angles_rad.shape != (n_angles,):
        raise EngineInputError(
            f"{angles_rad.size} angles for sinograms with {n_angles} rows: they must match"
        )
    if not 0.0 <= center <= n_cols - 1:
        raise EngineInputError(
            f"centre of rotation {center:.2f} px lies outside the detector (0..{n_cols - 1})"
        )
    if not np.all(np.isfinite(sinograms)):
        raise EngineInputError("sinograms contain NaN or infinite values")
    size = int(size or n_cols)
    filter_sinograms(np.zeros((1, 4), np.float32), filter_name=filter_name)  # validates the name
    recon = chosen._run(sinograms, angles_rad, float(center), size, filter_name)
    return recon[0] if single else recon

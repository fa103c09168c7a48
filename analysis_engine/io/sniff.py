"""Recognise and validate an uploaded file: which CorreLi dataset kind it is, and is it sound.

``sniff(path)`` looks at the file's content (never only its name), dispatches to the validator
of its format family and returns a :class:`FileInfo`. A file that claims a format but breaks
it raises :class:`~analysis_engine.errors.EngineInputError` with a message a scientist can act
on; the platform then keeps the file with status ``rejected`` and that message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analysis_engine.errors import EngineInputError
from analysis_engine.io.hexitec_native import (
    FRAME_BYTES,
    HXT_MAGIC,
    inspect_bin,
    inspect_hxt,
    read_calibration_array,
)

__all__ = ["FileInfo", "sniff", "DATASET_KINDS"]

DATASET_KINDS = (
    "xct_projections",
    "xct_reconstruction",
    "xcs_events",
    "xcs_frames",
    "xcs_spectra",
    "eis",
    "cycling",
    "image",
    "other",
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True)
class FileInfo:
    """What a file is: its dataset ``kind``, a ``format`` label and format-specific facts."""

    kind: str
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line saying what was found (frames, angles, flats, darks, energy range...)."""
        m = self.metadata
        describe = _DESCRIPTIONS.get(self.format)
        try:
            return describe(m) if describe else f"{self.format} ({self.kind})"
        except (KeyError, TypeError, ValueError, IndexError):
            return f"{self.format} ({self.kind})"


def _range(lo: Any, hi: Any, unit: str) -> str:
    return f"{float(lo):.4g}-{float(hi):.4g} {unit}"


def _describe_nxtomo(m: dict[str, Any]) -> str:
    shape = m["shape"]
    lo, hi = m["angle_range_deg"]
    pixel = f", pixel {m['pixel_size_m'] * 1e6:.3g} um" if m.get("pixel_size_m") else ""
    return (
        f"NXtomo ({m.get('entry', '/entry')}): {m['projections']} projections at "
        f"{_range(lo, hi, 'deg')} ({m['scan_range_deg']} deg scan), {m['flats']} flats, "
        f"{m['darks']} darks, images {shape[1]} x {shape[2]} px{pixel}"
    )


_DESCRIPTIONS = {
    "hexitec-bin": lambda m: (
        f"HEXITEC raw frames (.bin): {m['frames']} frames of {m['rows']} x {m['cols']}"
        + (
            f"; trailing partial frame of {m['trailing_bytes']} bytes ignored"
            if m.get("trailing_bytes")
            else ""
        )
        + "; needs gradient and intercept arrays (the beamtime's detector calibration)"
    ),  # fmt: skip
    "hexitec-hxt": lambda m: (
        f"HEXITEC spectra (.hxt v{m['version']}): {m['rows']} x {m['cols']} pixels, "
        f"{m['n_bins']} bins, {_range(m['energy_min_kev'], m['energy_max_kev'], 'keV')}"
    ),
    "correli-spectra": lambda m: (
        f"spectra: {m['rows']} x {m['cols']} pixels, {m['n_bins']} bins, "
        f"{_range(m['energy_min_kev'], m['energy_max_kev'], 'keV')}"
    ),
    "hexitec-events": lambda m: (
        f"HEXITEC event list: {m['events']} events in {m['frames']} frames "
        f"({m['values']}{', with calibration' if m.get('has_calibration') else ''})"
    ),
    "hexitec-frames": lambda m: (
        f"HEXITEC raw frames: {m['frames']} frames of {m['rows']} x {m['cols']}, threshold "
        f"{m['threshold_kev']} keV"
    ),
    "nxtomo": _describe_nxtomo,
    "correli-reconstruction": lambda m: (
        "reconstructed volume "
        + " x ".join(str(v) for v in m["shape"])
        + (f", voxel {m['voxel_size_um']:.3g} um" if m.get("voxel_size_um") else "")
    ),
    "hexitec-calibration-array": lambda m: (
        f"HEXITEC per-pixel calibration array 80 x 80, values {m['min']:.4g} to {m['max']:.4g}"
        f", {m['non_finite_pixels']} non-finite (bad) pixels; import it with the beamtime "
        "manifest's calibrations to use it"
    ),
    "nexus-nxdata": lambda m: "NeXus NXdata volume " + " x ".join(str(v) for v in m["shape"]),
    "tiff": lambda m: "TIFF " + " x ".join(str(v) for v in m["shape"]) + f" {m['dtype']}",
}


def sniff(path: str | os.PathLike, *, expected_kind: str | None = None) -> FileInfo:
    """Detect and validate the format of ``path``.

    Parameters
    ----------
    path
        The file to inspect. Only headers and small metadata are read, so multi-GB files are
        fine.
    expected_kind
        The kind the uploader declared, if any. A file whose content is another kind raises.

    Raises
    ------
    EngineInputError
        Empty, truncated or unrecognised files, or a file that breaks its format's contract.
    """
    p = Path(path)
    if not p.exists():
        raise EngineInputError(f"file not found: {p.name}")
    if p.stat().st_size == 0:
        raise EngineInputError(f"{p.name} is empty")
    with open(p, "rb") as fh:
        head = fh.read(512)

    if head.startswith(HDF5_SIGNATURE):
        info = _sniff_hdf5(p)
    elif head.startswith(HXT_MAGIC):
        info = FileInfo("xcs_spectra", "hexitec-hxt", inspect_hxt(p))
    elif head[:4] in TIFF_SIGNATURES:
        info = _sniff_tiff(p)
    elif (calibration := _calibration_array(p, head)) is not None:
        info = calibration
    elif p.suffix.lower() in {".csv", ".txt", ".tsv"} or _looks_like_text(head):
        from analysis_engine.io.tables import inspect_table

        info = inspect_table(p, expected_kind=expected_kind)
    elif p.suffix.lower() in {".h5", ".hdf5", ".nxs", ".hdf"}:
        raise EngineInputError(
            f"{p.name} is named like HDF5 but does not start with the HDF5 signature "
            "(truncated during transfer, or not HDF5?)"
        )
    elif _looks_like_bin(p, head):
        info = FileInfo("xcs_frames", "hexitec-bin", inspect_bin(p))
    else:
        info = FileInfo(kind="other", format="unknown", metadata={})

    if expected_kind and expected_kind not in {"other", info.kind}:
        raise EngineInputError(
            f"{p.name} was uploaded as {expected_kind} but its content is {info.kind} "
            f"({info.format})"
        )
    return info


def _calibration_array(p: Path, head: bytes) -> FileInfo | None:
    """An 80 x 80 per-pixel HEXITEC map (gradients, intercepts or thresholds): ``.npy``, or
    text whose first line holds 80 numbers. Other ``.npy`` arrays are reported as such."""
    if head.startswith(b"\x93NUMPY"):
        try:
            shape = np.load(p, mmap_mode="r", allow_pickle=False).shape
        except ValueError as exc:
            raise EngineInputError(f"{p.name} is not a valid .npy array: {exc}") from None
        if shape != (80, 80):
            return FileInfo("other", "npy", {"shape": list(shape)})
    elif not _looks_like_text(head) or p.stat().st_size > 4_000_000:
        return None
    else:
        with open(p, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().split()
        try:
            [float(v) for v in first]
        except ValueError:
            return None
        if len(first) != 80:
            return None
    values = read_calibration_array(p, what="HEXITEC calibration array")
    finite = values[np.isfinite(values)]
    return FileInfo(
        "other",
        "hexitec-calibration-array",
        {
            "shape": [80, 80],
            "non_finite_pixels": int(values.size - finite.size),
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
        },
    )


def _looks_like_bin(p: Path, head: bytes) -> bool:
    """A headerless HEXITEC stream: at least one 12800-byte frame of 14-bit values.

    Raw frames have no signature, so the test is the content: the size (a whole number of
    frames, or a ``.bin`` name with a partial tail) and the first values all within the ADC's
    14 bits, which text, images and archives almost never satisfy.
    """
    size = p.stat().st_size
    if size < FRAME_BYTES or not (size % FRAME_BYTES == 0 or p.suffix.lower() == ".bin"):
        return False
    with open(p, "rb") as fh:
        first = fh.read(FRAME_BYTES)
    values = memoryview(first).cast("H")
    return max(values) <= 16383


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _sniff_hdf5(p: Path) -> FileInfo:
    from analysis_engine.io.nxtomo import find_nxtomo_entry

    try:
        with h5py.File(p, "r") as f:
            names = set(f.keys())
            has_recon = isinstance(f.get("entry/reconstruction/data"), h5py.Dataset)
            try:
                nxtomo_entry = find_nxtomo_entry(f)
            except EngineInputError:
                nxtomo_entry = None
            nxdata = _nxdata_volume(f)
    except OSError as exc:
        raise EngineInputError(f"{p.name} cannot be read as HDF5 (truncated?): {exc}") from None

    if "events" in names:
        from analysis_engine.io.hexitec import inspect_events

        return FileInfo("xcs_events", "hexitec-events", inspect_events(p))
    if "raw_frames" in names:
        from analysis_engine.io.hexitec import inspect_frames

        return FileInfo("xcs_frames", "hexitec-frames", inspect_frames(p))
    if "pixel_histograms" in names:
        from analysis_engine.io.spectra import inspect_spectra

        return FileInfo("xcs_spectra", "correli-spectra", inspect_spectra(p))
    if has_recon:
        from analysis_engine.io.nxtomo import inspect_reconstruction

        return FileInfo("xct_reconstruction", "correli-reconstruction", inspect_reconstruction(p))
    if nxtomo_entry is not None:
        from analysis_engine.io.nxtomo import inspect_nxtomo

        return FileInfo("xct_projections", "nxtomo", inspect_nxtomo(p))
    if nxdata is not None:
        return FileInfo("xct_reconstruction", "nexus-nxdata", nxdata)
    raise EngineInputError(
        f"{p.name} is HDF5 but matches no known layout: expected /events (HEXITEC events), "
        "/raw_frames (HEXITEC frames), /pixel_histograms (spectra), an NXtomo entry "
        "(definition NXtomo), /entry/reconstruction/data or a 3-D NXdata signal; found "
        f"top-level {sorted(names)[:8]}"
    )


def _nxdata_volume(f: h5py.File) -> dict[str, Any] | None:
    """The first NXdata group (two levels deep) whose ``signal`` is a 3-D dataset."""
    for top in f.values():
        if not isinstance(top, h5py.Group):
            continue
        for group in (top, *(g for g in top.values() if isinstance(g, h5py.Group))):
            nx_class = group.attrs.get("NX_class", b"")
            nx_class = nx_class.decode() if isinstance(nx_class, bytes) else str(nx_class)
            signal = group.attrs.get("signal")
            if nx_class != "NXdata" or signal is None:
                continue
            signal = signal.decode() if isinstance(signal, bytes) else str(signal)
            ds = group.get(signal)
            if isinstance(ds, h5py.Dataset) and ds.ndim == 3 and min(ds.shape) > 0:
                return {"shape": list(ds.shape), "dtype": str(ds.dtype), "path": ds.name}
    return None


def _sniff_tiff(p: Path) -> FileInfo:
    from analysis_engine.io.tiffstack import TiffStack

    stack = TiffStack(p)  # every page the same shape and dtype, or a message saying which not
    shape = stack.shape[1:] if stack.shape[0] == 1 else stack.shape
    if min(shape) == 0:
        raise EngineInputError(f"{p.name}: TIFF has no image data (shape {shape})")
    kind = "xct_reconstruction" if len(shape) == 3 else "image"
    return FileInfo(kind, "tiff", {"shape": list(shape), "dtype": str(stack.dtype)})

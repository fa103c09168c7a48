"""Plotly figure JSON built from a stage's HDF5 output.

Figures are plain dicts (``{"data": [...], "layout": {...}}``) with numbers as JSON lists
(NaN -> null), so the browser renders them with the vendored plotly.js and tests can read the
values back. Maps have axes in mm (HEXITEC pixel = 0.27 mm at the sample) and hover values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis_engine.compton.calibration import DEFAULT_CALIBRATION, LinearCalibration
from analysis_engine.errors import EngineInputError
from analysis_engine.io.results import ResultContents, read_result, read_result_plane
from analysis_engine.registration.downsample import COMPTON_PIXEL_UM

__all__ = [
    "COMPTON_PIXEL_MM",
    "S_CALIBRATION",
    "heatmap",
    "build_figures",
    "li_maps_by_region",
    "s_vs_lithium",
    "nyquist",
]

COMPTON_PIXEL_MM = COMPTON_PIXEL_UM / 1000.0
# S = a + b (1 - x): the engine's default calibration (fit of the paper's Table 2).
S_CALIBRATION = (DEFAULT_CALIBRATION.intercept, DEFAULT_CALIBRATION.slope)
LAYOUT_BASE = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "template": "plotly_white"}


def _clean(a: Any) -> Any:
    """numpy -> nested lists with NaN/inf as None (JSON null)."""
    arr = np.asarray(a)
    if arr.dtype.kind in "fc":
        out = arr.astype(float).tolist()
        return _nan_to_none(out)
    return arr.tolist()


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _finite_range(arrays: Sequence[np.ndarray]) -> tuple[float | None, float | None]:
    values = [np.asarray(a, dtype=float) for a in arrays]
    finite = [a[np.isfinite(a)] for a in values]
    finite = [a for a in finite if a.size]
    if not finite:
        return None, None
    return float(min(a.min() for a in finite)), float(max(a.max() for a in finite))


def heatmap(
    z: np.ndarray,
    *,
    title: str,
    colorbar: str,
    pixel_mm: float = COMPTON_PIXEL_MM,
    zmin: float | None = None,
    zmax: float | None = None,
    colorscale: str = "Viridis",
    xaxis: str = "x",
    yaxis: str = "y",
    showscale: bool = True,
    name: str = "",
) -> dict:
    """A heatmap trace of a 2D map with pixel centres in mm and hover values."""
    z = np.asarray(z, dtype=float)
    rows, cols = z.shape
    trace = {
        "type": "heatmap",
        "name": name or title,
        "z": _clean(z),
        "x": _clean((np.arange(cols) + 0.5) * pixel_mm),
        "y": _clean((np.arange(rows) + 0.5) * pixel_mm),
        "colorscale": colorscale,
        "colorbar": {"title": {"text": colorbar}},
        "hovertemplate": f"x %{{x:.2f}} mm<br>y %{{y:.2f}} mm<br>{colorbar} %{{z:.4g}}<extra></extra>",
        "xaxis": xaxis,
        "yaxis": yaxis,
        "showscale": showscale,
    }
    if zmin is not None and zmax is not None:
        trace.update(zmin=zmin, zmax=zmax, zauto=False)
    return trace


def _map_figure(z: np.ndarray, *, title: str, colorbar: str, pixel_mm: float = COMPTON_PIXEL_MM):
    return {
        "data": [heatmap(z, title=title, colorbar=colorbar, pixel_mm=pixel_mm)],
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": title},
            "xaxis": {"title": {"text": "x (mm)"}, "constrain": "domain"},
            "yaxis": {"title": {"text": "y (mm)"}, "scaleanchor": "x", "autorange": "reversed"},
        },
    }


def li_maps_by_region(
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    colorbar: str = "Li stoichiometry (1 - x)",
    pixel_mm: float = COMPTON_PIXEL_MM,
    columns: int | None = None,
) -> dict:
    """Maps (one per depth region, or per state and region) sharing ONE colour scale.

    Panels run left to right, ``columns`` per row (all in one row by default), e.g. a row
    per charge state and a column per region. Axes in mm keep the pixels square.
    """
    zmin, zmax = _finite_range(maps)
    n = max(len(maps), 1)
    columns = min(columns or n, n)
    rows = -(-n // columns)
    gap_x, gap_y = 0.04, 0.1 if rows > 1 else 0.0
    width = (1 - gap_x * (columns - 1)) / columns
    height = (1 - gap_y * (rows - 1)) / rows
    data: list[dict] = []
    layout: dict[str, Any] = {
        **LAYOUT_BASE,
        "title": {"text": colorbar},
        "annotations": [],
        "height": 120 + 360 * rows,
        "margin": {"l": 60, "r": 20, "t": 80, "b": 50},
    }
    for i, (z, title) in enumerate(zip(maps, titles, strict=True)):
        suffix = "" if i == 0 else str(i + 1)
        row, col = divmod(i, columns)
        x0 = col * (width + gap_x)
        y1 = 1 - row * (height + gap_y)
        data.append(
            heatmap(
                z,
                title=title,
                colorbar=colorbar,
                pixel_mm=pixel_mm,
                zmin=zmin,
                zmax=zmax,
                xaxis=f"x{suffix}",
                yaxis=f"y{suffix}",
                showscale=i == n - 1,
                name=title,
            )
        )
        layout[f"xaxis{suffix}"] = {
            "domain": [x0, x0 + width],
            "title": {"text": "x (mm)" if row == rows - 1 else ""},
            "anchor": f"y{suffix}",
            "constrain": "domain",
        }
        layout[f"yaxis{suffix}"] = {
            "domain": [y1 - height, y1],
            "title": {"text": "y (mm)" if col == 0 else ""},
            "anchor": f"x{suffix}",
            "scaleanchor": f"x{suffix}",
            "constrain": "domain",
            "autorange": "reversed",
        }
        layout["annotations"].append(
            {
                "text": title,
                "x": x0 + width / 2,
                "y": y1,
                "yshift": 18,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
            }
        )
    return {"data": data, "layout": layout}


def s_vs_lithium(points: Sequence[Mapping[str, Any]], *, calibration=DEFAULT_CALIBRATION) -> dict:
    """S-parameter against (1 - x) with the calibration line S = a + b (1 - x).

    ``points``: dicts with ``s``, ``li`` (= 1 - x) and a ``label``; ``calibration``: an engine
    :class:`~analysis_engine.compton.calibration.LinearCalibration`.
    """
    a, b = calibration.intercept, calibration.slope
    xs = np.linspace(0.0, 1.0, 21)
    line = calibration.s_parameter(xs)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"calibration S = {a:.3f} + {b:.3f} (1 - x)",
                "x": _clean(xs),
                "y": _clean(line),
            },
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": "measured",
                "x": [p.get("li") for p in points],
                "y": [p.get("s") for p in points],
                "text": [p.get("label", "") for p in points],
                "textposition": "top center",
                "marker": {"size": 9},
                "hovertemplate": "%{text}<br>1 - x %{x:.3f}<br>S %{y:.3f}<extra></extra>",
            },
        ],
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": "S-parameter against Li stoichiometry"},
            "xaxis": {"title": {"text": "1 - x"}},
            "yaxis": {"title": {"text": "S"}},
        },
    }


def nyquist(z_real: np.ndarray, z_imag: np.ndarray, *, name: str = "simulated") -> dict:
    """Nyquist plot of the normalised impedance (Eq. 2): -Im Z against Re Z, equal axes."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": _clean(z_real),
                "y": _clean(-np.asarray(z_imag, dtype=float)),
                "hovertemplate": "Re %{x:.4g}<br>-Im %{y:.4g}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": "Simulated EIS (Nyquist, normalised)"},
            "xaxis": {"title": {"text": "Re Z~"}},
            "yaxis": {"title": {"text": "-Im Z~"}, "scaleanchor": "x"},
        },
    }


def _line(x, y, *, title, xtitle, ytitle, name="", log_y=False) -> dict:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": name or title,
                "x": _clean(x),
                "y": _clean(y),
            }
        ],
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": title},
            "xaxis": {"title": {"text": xtitle}},
            "yaxis": {"title": {"text": ytitle}, **({"type": "log"} if log_y else {})},
        },
    }


def _bar(labels, values, *, title, ytitle) -> dict:
    return {
        "data": [{"type": "bar", "x": list(labels), "y": _clean(values), "name": title}],
        "layout": {**LAYOUT_BASE, "title": {"text": title}, "yaxis": {"title": {"text": ytitle}}},
    }


def _get(f: ResultContents, name: str) -> np.ndarray | None:
    return f.get(name)


def _events_figures(f: ResultContents, summary) -> dict:
    figs = {}
    bins, summed = _get(f, "energy_bins"), _get(f, "summed_histogram")
    if bins is not None and summed is not None:
        figs["spectrum"] = _line(
            bins,
            summed,
            title="Summed spectrum",
            xtitle="energy (keV)",
            ytitle="counts",
            log_y=True,
        )
    hist = f.get("pixel_histograms")
    if hist is not None:
        counts = np.asarray(hist, dtype=np.float64).sum(axis=-1)
        figs["counts"] = _map_figure(counts, title="Counts per pixel", colorbar="counts")
    diag = summary.get("diagnostics") or {}
    histogram = diag.get("occupancy_histogram")
    if isinstance(histogram, dict) and histogram.get("frames"):
        edges = np.asarray(histogram["edges"], dtype=np.float64) * 100
        limit = 100 * float(diag.get("occupancy_limit") or 0)
        mean = 100 * float(diag.get("occupancy_mean") or 0)
        figs["occupancy"] = {
            "data": [
                {
                    "type": "bar",
                    "x": _clean((edges[:-1] + edges[1:]) / 2),
                    "y": list(histogram["frames"]),
                    "name": "frames",
                }
            ],
            "layout": {
                **LAYOUT_BASE,
                "title": {
                    "text": f"Occupancy per frame: mean {mean:.2f} %, limit {limit:g} %"
                    + (" (exceeded)" if diag.get("occupancy_flagged") else "")
                },
                "xaxis": {"title": {"text": "pixels hit per frame (%)"}},
                "yaxis": {"title": {"text": "frames"}},
                "shapes": [
                    {
                        "type": "line",
                        "x0": limit,
                        "x1": limit,
                        "yref": "paper",
                        "y0": 0,
                        "y1": 1,
                        "line": {"dash": "dash", "color": "firebrick"},
                    }
                ],
            },
        }
    pileup = f.get("diagnostics/pileup_probability")
    if pileup is not None and pileup.ndim == 2:
        figs["pileup"] = _map_figure(
            pileup, title="Pile-up probability per pixel and frame (Poisson)", colorbar="P(>=2)"
        )
    return figs


def _compton_figures(f: ResultContents, summary) -> dict:
    figs = {}
    for name, title, bar in (
        ("li_stoichiometry", "Li stoichiometry map", "1 - x"),
        ("s_parameter", "S-parameter map", "S"),
        ("peak_center_kev", "Compton peak centre", "keV"),
        ("compton_counts", "Compton counts", "counts"),
        ("angle_deg", "Scattering angle per pixel", "deg"),
        ("line_energy_kev", "Compton line energy per pixel", "keV"),
        ("background_per_kev", "Background subtracted under the peak", "counts/keV"),
        ("peak_fwhm_kev", "Fitted peak FWHM per pixel", "keV"),
        ("resolution_fwhm_kev", "Detector FWHM per pixel (given)", "keV"),
        ("non_cathode_fraction", "Electron share of electrolyte, carbon and binder", "share"),
        ("s_measured", "S-parameter before the electrolyte/binder correction", "S"),
    ):
        z = _get(f, name)
        if z is not None and z.ndim == 2:
            figs[name if name != "li_stoichiometry" else "li_map"] = _map_figure(
                z, title=title, colorbar=bar
            )
    if "li_map" in figs:
        title = figs["li_map"]["layout"]["title"]["text"]
        figs["li_map"]["layout"]["title"]["text"] = f"{title} ({electrolyte_label(summary)})"
    bins, summed = _get(f, "energy_bins"), _get(f, "summed_spectrum")
    if bins is not None and summed is not None and bins.shape == summed.shape:
        figs["spectrum"] = _line(
            bins, summed, title="Summed spectrum (mask)", xtitle="energy (keV)", ytitle="counts"
        )
    pz, j = _get(f, "profile/pz_au"), _get(f, "profile/j")
    if pz is not None and j is not None:
        figs["profile"] = _line(
            pz, j, title="Compton profile J(p_z)", xtitle="p_z (a.u.)", ytitle="J"
        )
    s, li = (
        summary.get("s_total", summary.get("s_mean")),
        summary.get("li_total", summary.get("li_mean")),
    )
    if s is not None and li is not None:
        calibration = summary_calibration(summary)
        figs["s_vs_li"] = s_vs_lithium(
            [{"s": s, "li": li, "label": "this map"}], calibration=calibration
        )
        figs["s_vs_li"]["layout"]["title"]["text"] = calibration_label(summary)
    return figs


def summary_calibration(summary: Mapping[str, Any]) -> LinearCalibration:
    """The calibration line a Compton result used (its summary's ``calibration``)."""
    given = summary.get("calibration")
    if not isinstance(given, Mapping):
        return DEFAULT_CALIBRATION
    try:
        return LinearCalibration(
            intercept=float(given["intercept"]),
            slope=float(given["slope"]),
            intercept_sigma=float(given.get("intercept_sigma") or 0.0),
            slope_sigma=float(given.get("slope_sigma") or 0.0),
            covariance_ab=float(given.get("covariance_ab") or 0.0),
            source=str(given.get("source", "")),
        )
    except (KeyError, TypeError, ValueError, EngineInputError):
        return DEFAULT_CALIBRATION


def electrolyte_correction(summary: Mapping[str, Any] | None) -> tuple[str, float | None]:
    """("applied" or "not applied", delta Li) of a compton result's electrolyte, carbon and
    binder correction (the engine's ``matrix_correction``; ``delta_li``: its change of
    ``li_total``, None when not applied)."""
    info = (summary or {}).get("matrix_correction")
    if not isinstance(info, Mapping):
        return "not applied", None
    delta = info.get("delta_li")
    return "applied", float(delta) if isinstance(delta, int | float) else None


def electrolyte_label(summary: Mapping[str, Any]) -> str:
    """The electrolyte, carbon and binder correction of a compton result, in words."""
    state, delta = electrolyte_correction(summary)
    if state != "applied":
        return "electrolyte/carbon/binder correction not applied"
    size = f": delta Li {delta:+.3f}" if delta is not None else ""
    return f"electrolyte/carbon/binder correction applied{size}"


def calibration_label(summary: Mapping[str, Any]) -> str:
    """Which calibration a Compton result used, with its uncertainty, in words."""
    given = summary.get("calibration")
    calibration = summary_calibration(summary)
    default = not isinstance(given, Mapping) or bool(given.get("is_default", True))
    a, b = calibration.intercept, calibration.slope
    text = f"S = {a:.3f} + {b:.3f} (1 - x)"
    if calibration.intercept_sigma or calibration.slope_sigma:
        text = (
            f"S = ({a:.3f} +- {calibration.intercept_sigma:.3f}) + "
            f"({b:.3f} +- {calibration.slope_sigma:.3f}) (1 - x), "
            f"cov(A, B) = {calibration.covariance_ab:.2g}"
        )
    source = "the paper's calibration (default)" if default else "calibration from standards"
    return f"{text}: {source}"


#: widest map drawn in a figure: a paper-scale slice (3584 px) is shown as block means
MAX_MAP_PIXELS = 512


def block_nanmean(z: np.ndarray, step: int) -> np.ndarray:
    """Means of ``step`` x ``step`` blocks of a 2D map, NaN ignored (NaN where all are);
    the edge blocks are partial."""
    z = np.asarray(z, dtype=np.float64)
    if step <= 1:
        return z
    rows, cols = -(-z.shape[0] // step), -(-z.shape[1] // step)
    padded = np.full((rows * step, cols * step), np.nan)
    padded[: z.shape[0], : z.shape[1]] = z
    blocks = padded.reshape(rows, step, cols, step)
    finite = np.isfinite(blocks)
    count = finite.sum(axis=(1, 3))
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _segment_figures(f: ResultContents, summary) -> dict:
    figs = {}
    lateral = _get(f, "lateral_porosity")
    voxel_um = float(f.attrs.get("voxel_size_um", 0) or 0) or None
    pixel_mm = voxel_um / 1000 if voxel_um else 1.0
    if lateral is not None and lateral.ndim == 3:
        step = -(-max(lateral.shape[1:]) // MAX_MAP_PIXELS)
        figs["porosity_maps"] = li_maps_by_region(
            [block_nanmean(lateral[i], step) for i in range(lateral.shape[0])],
            [f"region {i + 1}" for i in range(lateral.shape[0])],
            colorbar="porosity",
            pixel_mm=pixel_mm * step,
        )
    by_region = _get(f, "porosity_by_region")
    if by_region is not None:
        figs["porosity_by_region"] = _bar(
            [f"region {i + 1}" for i in range(len(by_region))],
            np.asarray(by_region) * 100,
            title="Porosity by depth region",
            ytitle="porosity (vol%)",
        )
    return figs


def _tortuosity_figures(f: ResultContents, summary) -> dict:
    figs = {}
    # only the middle plane of the 3D field is read
    name = next((n for n in ("/concentration", "/fields/concentration") if n in f.shapes), None)
    mid = read_result_plane(f.path, name, axis=2) if name else None
    if mid is not None:
        figs["concentration"] = _map_figure(
            mid, title="Concentration (mid slice)", colorbar="C", pixel_mm=1.0
        )
    if summary.get("tau") is not None:
        figs["tortuosity"] = _bar(
            ["tau"],
            [summary["tau"]],
            title=f"Tortuosity along axis {summary.get('axis')}",
            ytitle="tau",
        )
    return figs


def _eis_figures(f: ResultContents, summary) -> dict:
    zr, zi = _get(f, "impedance/z_real"), _get(f, "impedance/z_imag")
    return {"nyquist": nyquist(zr, zi)} if zr is not None and zi is not None else {}


def _register_figures(f: ResultContents, summary) -> dict:
    reg = _get(f, "registered")
    fixed = _get(f, "fixed")
    figs = {}
    if reg is not None and reg.ndim == 2:
        fig = _map_figure(reg, title="XCT registered onto the Compton grid", colorbar="XCT")
        if fixed is not None and fixed.shape == reg.shape:
            contour = heatmap(fixed, title="Compton", colorbar="Compton")
            contour.update(type="contour", showscale=False, contours={"coloring": "lines"})
            fig["data"].append(contour)
        figs["overlay"] = fig
    return figs


def _transport_table_figures(f: ResultContents, summary) -> dict:
    rows = summary.get("rows") or []
    figs = {}
    for quantity, title, ytitle in (
        ("tau", "Tortuosity by region and direction", "tau"),
        ("d_directional_cm2_s", "Directional diffusivity (Eq. 4)", "D (cm^2/s)"),
    ):
        data = []
        for direction in sorted({r.get("direction") for r in rows if r.get("direction")}):
            sel = [r for r in rows if r.get("direction") == direction]
            data.append(
                {
                    "type": "bar",
                    "name": direction,
                    "x": [f"region {r.get('region')}" for r in sel],
                    "y": [r.get(quantity) for r in sel],
                }
            )
        if data:
            figs[quantity] = {
                "data": data,
                "layout": {
                    **LAYOUT_BASE,
                    "barmode": "group",
                    "title": {"text": title},
                    "yaxis": {"title": {"text": ytitle}},
                },
            }
    return figs


def _correlate_figures(f: ResultContents, summary) -> dict:
    regions = sorted(
        (k for k in f.groups("region_") if k.split("_")[1].isdigit()),
        key=lambda k: int(k.split("_")[1]),
    )
    figs = {}
    porosity = [a for k in regions if (a := f.get(f"{k}/porosity")) is not None]
    li = [a for k in regions if (a := f.get(f"{k}/li_stoichiometry")) is not None]
    titles = [k.replace("_", " ") for k in regions]
    if li and len(li) == len(regions):
        figs["li_maps"] = li_maps_by_region(li, titles)
    if porosity and len(porosity) == len(regions):
        overlay = li_maps_by_region(porosity, titles, colorbar="XCT porosity on the Compton grid")
        # the Compton map as contour lines over the registered XCT porosity
        for i, z in enumerate(li[: len(porosity)]):
            contour = heatmap(z, title=f"Li {titles[i]}", colorbar="1 - x")
            contour.update(
                type="contour",
                showscale=False,
                contours={"coloring": "lines"},
                line={"width": 1},
                colorscale="Greys",
                xaxis=overlay["data"][i]["xaxis"],
                yaxis=overlay["data"][i]["yaxis"],
            )
            overlay["data"].append(contour)
        figs["overlay"] = overlay
    scatter = []
    for k in regions:
        p = f.get(f"{k}/pairs")
        if p is not None and p.ndim == 2 and p.shape[0]:
            scatter.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": k.replace("_", " "),
                    "x": _clean(p[:, 0]),
                    "y": _clean(p[:, 1]),
                    "marker": {"size": 4, "opacity": 0.6},
                }
            )
    if scatter:
        figs["li_vs_porosity"] = {
            "data": scatter,
            "layout": {
                **LAYOUT_BASE,
                "title": {"text": "Li stoichiometry against porosity, per pixel"},
                "xaxis": {"title": {"text": "porosity"}},
                "yaxis": {"title": {"text": "1 - x"}},
            },
        }
    return figs


def line_figure(x, y, *, title: str, xtitle: str, ytitle: str, log_y: bool = False) -> dict:
    """One line trace with titled axes."""
    return _line(x, y, title=title, xtitle=xtitle, ytitle=ytitle, log_y=log_y)


def map_figure(z: np.ndarray, *, title: str, colorbar: str, pixel_mm: float) -> dict:
    """A 2D map with axes in mm (square pixels)."""
    return _map_figure(z, title=title, colorbar=colorbar, pixel_mm=pixel_mm)


def spectrum_with_windows(
    energy_kev, counts, windows: Mapping[str, Sequence[tuple[float, float]]], *, title: str
) -> dict:
    """A summed spectrum with the S-parameter's energy windows shaded (low: blue, high: red)."""
    fig = _line(energy_kev, counts, title=title, xtitle="energy (keV)", ytitle="counts")
    colours = {"low": "rgba(31,119,180,0.18)", "high": "rgba(214,39,40,0.15)"}
    fig["layout"]["shapes"] = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": a,
            "x1": b,
            "y0": 0,
            "y1": 1,
            "fillcolor": colours.get(name, "rgba(0,0,0,0.1)"),
            "line": {"width": 0},
            "name": f"S window {name}",
        }
        for name, bands in windows.items()
        for a, b in bands
    ]
    fig["layout"]["annotations"] = [
        {
            "x": 0.5 * (bands[0][0] + bands[-1][1]),
            "y": 1.02,
            "xref": "x",
            "yref": "paper",
            "text": f"S {name} window",
            "showarrow": False,
        }
        for name, bands in windows.items()
        if bands
    ]
    return fig


def eis_figures(
    frequency_hz, z_real_ohm, z_imag_ohm, *, fit_real=None, fit_imag=None, name="measured"
) -> dict[str, dict]:
    """Nyquist (-Im Z against Re Z, equal axes) and Bode (|Z| and phase against frequency)
    of a measured spectrum, with the fitted curve over the data when given."""
    f = np.asarray(frequency_hz, dtype=float)
    z = np.asarray(z_real_ohm, dtype=float) + 1j * np.asarray(z_imag_ohm, dtype=float)
    curves = [(name, z, "markers")]
    if fit_real is not None and fit_imag is not None:
        fitted = np.asarray(fit_real, dtype=float) + 1j * np.asarray(fit_imag, dtype=float)
        curves.append(("fit R_e + (R_CT || C) + W", fitted, "lines"))
    nyq = {
        "data": [
            {
                "type": "scatter",
                "mode": mode,
                "name": label,
                "x": _clean(zz.real),
                "y": _clean(-zz.imag),
                "customdata": _clean(f),
                "hovertemplate": "f %{customdata:.3g} Hz<br>Re %{x:.4g} ohm<br>-Im %{y:.4g} ohm"
                "<extra></extra>",
            }
            for label, zz, mode in curves
        ],
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": "Nyquist plot"},
            "xaxis": {"title": {"text": "Re Z (ohm)"}},
            "yaxis": {"title": {"text": "-Im Z (ohm)"}, "scaleanchor": "x"},
        },
    }
    bode_data = []
    for label, zz, mode in curves:
        bode_data.append(
            {
                "type": "scatter",
                "mode": mode,
                "name": f"|Z| {label}",
                "x": _clean(f),
                "y": _clean(np.abs(zz)),
            }
        )
        bode_data.append(
            {
                "type": "scatter",
                "mode": mode,
                "name": f"phase {label}",
                "x": _clean(f),
                "y": _clean(np.degrees(np.angle(zz))),
                "yaxis": "y2",
            }
        )
    bode = {
        "data": bode_data,
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": "Bode plot"},
            "xaxis": {"title": {"text": "frequency (Hz)"}, "type": "log"},
            "yaxis": {"title": {"text": "|Z| (ohm)"}, "type": "log"},
            "yaxis2": {"title": {"text": "phase (deg)"}, "overlaying": "y", "side": "right"},
        },
    }
    return {"nyquist": nyq, "bode": bode}


def cycling_figure(cycle, charge_mah_g, discharge_mah_g, efficiency_pct) -> dict:
    """Charge and discharge capacity (left axis) and Coulombic efficiency (right) per cycle."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "charge",
                "x": _clean(cycle),
                "y": _clean(charge_mah_g),
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "discharge",
                "x": _clean(cycle),
                "y": _clean(discharge_mah_g),
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Coulombic efficiency",
                "x": _clean(cycle),
                "y": _clean(efficiency_pct),
                "yaxis": "y2",
            },
        ],
        "layout": {
            **LAYOUT_BASE,
            "title": {"text": "Capacity and Coulombic efficiency"},
            "xaxis": {"title": {"text": "cycle"}},
            "yaxis": {"title": {"text": "capacity (mAh/g)"}},
            "yaxis2": {
                "title": {"text": "Coulombic efficiency (%)"},
                "overlaying": "y",
                "side": "right",
            },
        },
    }


def _electrochem_figures(f: ResultContents, summary) -> dict:
    eis = [f.get(f"eis/{n}") for n in ("frequency_hz", "z_real_ohm", "z_imag_ohm")]
    if all(a is not None for a in eis):
        return eis_figures(
            *eis,
            fit_real=_get(f, "eis/fit_z_real_ohm"),
            fit_imag=_get(f, "eis/fit_z_imag_ohm"),
        )
    names = ("cycle", "charge_capacity_mah_g", "discharge_capacity_mah_g")
    cycling = [f.get(f"cycling/{n}") for n in (*names, "coulombic_efficiency_pct")]
    if all(a is not None for a in cycling):
        return {"cycling": cycling_figure(*cycling)}
    return {}


def _calibrate_figures(f: ResultContents | None, summary) -> dict:
    """The standards' S against their known 1 - x, with the fitted line and its sigmas."""
    points = [
        {"s": p.get("s"), "li": p.get("one_minus_x"), "label": str(p.get("spectra", ""))}
        for p in summary.get("points") or []
        if isinstance(p, Mapping)
    ]
    if not points:
        return {}
    fit = dict(summary.get("calibration") or {}, is_default=False)
    fig = s_vs_lithium(points, calibration=summary_calibration({"calibration": fit}))
    fig["layout"]["title"]["text"] = calibration_label({"calibration": fit})
    return {"calibration": fig}


# builder and the arrays it reads (whole volumes are never among them)
BUILDERS = {
    "compton_calibrate": (_calibrate_figures, None),
    "electrochem": (_electrochem_figures, ("eis/*", "cycling/*")),
    "correlate": (_correlate_figures, ("region_*",)),
    "transport_table": (_transport_table_figures, ()),
    "events": (
        _events_figures,
        ("energy_bins", "summed_histogram", "pixel_histograms", "diagnostics/pileup_probability"),
    ),
    "compton": (
        _compton_figures,
        (
            "li_stoichiometry",
            "s_parameter",
            "peak_center_kev",
            "compton_counts",
            "energy_bins",
            "summed_spectrum",
            "profile/pz_au",
            "profile/j",
            "angle_deg",
            "line_energy_kev",
            "background_per_kev",
            "peak_fwhm_kev",
            "resolution_fwhm_kev",
        ),
    ),
    "segment": (_segment_figures, ("lateral_porosity", "porosity_by_region")),
    "tortuosity": (_tortuosity_figures, ()),
    "eis_sim": (_eis_figures, ("impedance/z_real", "impedance/z_imag")),
    "register": (_register_figures, ("registered", "fixed")),
}


def build_figures(
    kind: str, output_path: str | Path, summary: Mapping[str, Any]
) -> dict[str, dict]:
    """All figures of one stage result, by name; the first is the result's main figure."""
    entry = BUILDERS.get(kind)
    if entry is None:
        return {}
    builder, names = entry
    if names is None:  # built from the summary alone (e.g. a JSON output)
        return builder(None, dict(summary))
    return builder(read_result(output_path, names), dict(summary))

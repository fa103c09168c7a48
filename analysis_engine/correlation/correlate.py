"""Correlating Li stoichiometry (XCS-I) with XCT microstructure, per region and per cell.

Paper: Figure 4c-e (lateral Li vs porosity maps), Table 1 (porosity, tau, D_directional per
region), Table 2 (S and Li per region and state), and the Discussion: the Li gradient drops
by about 3 % from region 1 to 2 and 16 % from 2 to 3 in the discharged DIT cathode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from analysis_engine.errors import EngineInputError

__all__ = [
    "RegionCorrelation",
    "cell_correlation_summary",
    "correlate_maps",
    "correlation_figure",
    "li_gradient_pct",
    "overlay",
    "paired_values",
]

MIN_PAIRS = 5


def overlay(xct_map: np.ndarray, compton_map: np.ndarray) -> np.ndarray:
    """XCT map multiplied by the Compton mask (the paper's "image multiplication").

    Parameters
    ----------
    xct_map : ndarray, shape (H, W)
        Registered XCT map on the Compton grid (e.g. porosity), NaN where undefined.
    compton_map : ndarray, shape (H, W)
        A Compton map whose NaN marks pixels outside the XCS-I mask (e.g. ``/li_stoichiometry``).

    Returns
    -------
    ndarray, shape (H, W), float64
        ``xct_map`` where the Compton map is defined, NaN elsewhere.
    """
    a = np.asarray(xct_map, dtype=np.float64)
    b = np.asarray(compton_map, dtype=np.float64)
    if a.shape != b.shape:
        raise EngineInputError(
            f"the XCT map {a.shape} and the Compton map {b.shape} are not on the same grid: "
            "register the XCT map first"
        )
    return np.where(np.isfinite(b), a, np.nan)


def paired_values(x_map: np.ndarray, y_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel pairs (x, y) where both maps are finite, in row-major pixel order."""
    x = np.asarray(x_map, dtype=np.float64)
    y = np.asarray(y_map, dtype=np.float64)
    if x.shape != y.shape:
        raise EngineInputError(f"maps to pair differ in shape: {x.shape} vs {y.shape}")
    both = np.isfinite(x) & np.isfinite(y)
    return x[both], y[both]


@dataclass(frozen=True)
class RegionCorrelation:
    """Per-pixel correlation of one region (x = porosity, y = Li stoichiometry by default).

    Attributes
    ----------
    n
        Number of pixel pairs.
    pearson_r, pearson_p, spearman_rho, spearman_p
        Coefficients and two-sided p-values (scipy.stats).
    slope, intercept
        Least-squares line y = intercept + slope * x.
    x_mean, y_mean
        Means over the pairs.
    trend
        Binned trend: ``x_center``, ``y_mean``, ``y_low``, ``y_high`` (confidence interval of
        the bin mean, Student t), ``count`` per bin (lists, NaN for bins with < 2 pixels).
    density
        2D histogram for a density plot: ``x_edges``, ``y_edges``, ``counts`` [x bin][y bin].
    x, y
        The pairs themselves (for a scatter plot).
    """

    n: int
    pearson_r: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float
    slope: float
    intercept: float
    x_mean: float
    y_mean: float
    trend: dict
    density: dict
    confidence: float
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)

    def to_dict(self, *, include_pairs: bool = False) -> dict:
        """JSON-able form (NaN -> None); the raw pairs only when asked."""

        def clean(v):
            if isinstance(v, dict):
                return {k: clean(w) for k, w in v.items()}
            if isinstance(v, list | tuple | np.ndarray):
                return [clean(w) for w in v]
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        out = {
            "n": self.n,
            "pearson_r": self.pearson_r,
            "pearson_p": self.pearson_p,
            "spearman_rho": self.spearman_rho,
            "spearman_p": self.spearman_p,
            "slope": self.slope,
            "intercept": self.intercept,
            "x_mean": self.x_mean,
            "y_mean": self.y_mean,
            "confidence": self.confidence,
            "trend": self.trend,
            "density": self.density,
        }
        if include_pairs:
            out["x"], out["y"] = self.x, self.y
        return clean(out)


def correlate_maps(
    x_map: np.ndarray,
    y_map: np.ndarray,
    *,
    n_bins: int = 8,
    binning: str = "quantile",
    confidence: float = 0.95,
    density_bins: int = 20,
) -> RegionCorrelation:
    """Per-pixel correlation of two registered maps (porosity vs Li stoichiometry).

    Parameters
    ----------
    x_map, y_map : ndarray, shape (H, W)
        Same grid; NaN marks pixels without a value (outside either mask).
    n_bins
        Number of bins of x for the trend.
    binning
        ``"quantile"`` (equal pixel counts per bin) or ``"uniform"`` (equal widths).
    confidence
        Confidence level of the bin-mean intervals (Student t with n - 1 dof).
    density_bins
        Bins per axis of the density histogram.

    Returns
    -------
    RegionCorrelation

    Raises
    ------
    EngineInputError
        Fewer than 5 shared pixels (empty masks, no overlap) or a constant map.
    """
    x, y = paired_values(x_map, y_map)
    if x.size < MIN_PAIRS:
        raise EngineInputError(
            f"only {x.size} pixels have both an XCT value and a Li stoichiometry: cannot "
            f"correlate (need at least {MIN_PAIRS}); the masks are empty or do not overlap"
        )
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        which = "XCT map" if np.ptp(x) == 0 else "Li map"
        raise EngineInputError(f"the {which} is constant over the shared pixels: no correlation")
    if binning not in ("quantile", "uniform"):
        raise EngineInputError(f"binning must be 'quantile' or 'uniform', got {binning!r}")
    if not 0 < confidence < 1:
        raise EngineInputError(f"confidence must be between 0 and 1, got {confidence}")
    n_bins = max(1, min(int(n_bins), x.size // 2))
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    slope, intercept = np.polyfit(x, y, 1)

    if binning == "quantile":
        edges = np.quantile(x, np.linspace(0, 1, n_bins + 1))
    else:
        edges = np.linspace(x.min(), x.max(), n_bins + 1)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
    centers, means, lows, highs, counts = [], [], [], [], []
    for b in range(n_bins):
        sel = index == b
        count = int(sel.sum())
        counts.append(count)
        if count == 0:
            centers.append(float("nan"))
            means.append(float("nan"))
            lows.append(float("nan"))
            highs.append(float("nan"))
            continue
        mean = float(y[sel].mean())
        centers.append(float(x[sel].mean()))
        means.append(mean)
        if count < 2:
            lows.append(float("nan"))
            highs.append(float("nan"))
            continue
        half = stats.t.ppf(0.5 + confidence / 2, count - 1) * y[sel].std(ddof=1) / np.sqrt(count)
        lows.append(mean - float(half))
        highs.append(mean + float(half))
    hist, x_edges, y_edges = np.histogram2d(x, y, bins=density_bins)
    return RegionCorrelation(
        n=int(x.size),
        pearson_r=float(pearson.statistic),
        pearson_p=float(pearson.pvalue),
        spearman_rho=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
        slope=float(slope),
        intercept=float(intercept),
        x_mean=float(x.mean()),
        y_mean=float(y.mean()),
        trend={
            "x_edges": edges.tolist(),
            "x_center": centers,
            "y_mean": means,
            "y_low": lows,
            "y_high": highs,
            "count": counts,
        },
        density={
            "x_edges": x_edges.tolist(),
            "y_edges": y_edges.tolist(),
            "counts": hist.astype(int).tolist(),
        },
        confidence=float(confidence),
        x=x,
        y=y,
    )


def li_gradient_pct(values: Sequence[float], *, relative_to: str = "previous") -> list[float]:
    """Region-to-region change in percent: ``100 (v[k+1] - v[k]) / ref``.

    Parameters
    ----------
    values
        One value per region, region 1 first (e.g. mean Li stoichiometry ``1 - x``).
    relative_to
        ``"previous"``: ref = v[k] (default); ``"first"``: ref = v[0].

    Returns
    -------
    list of float, length n - 1
        Negative for a drop. Paper Table 2, discharged: 0.76, 0.73, 0.61 give -3.9 % and
        -16.4 % (the text quotes "3 %" and "16 %").
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise EngineInputError("a gradient needs one value for each of at least 2 regions")
    if relative_to not in ("previous", "first"):
        raise EngineInputError(f"relative_to must be 'previous' or 'first', got {relative_to!r}")
    ref = v[:-1] if relative_to == "previous" else np.full(v.size - 1, v[0])
    if np.any(ref == 0) or not np.all(np.isfinite(v)):
        raise EngineInputError(f"cannot express a percentage change from values {v.tolist()}")
    return (100.0 * np.diff(v) / ref).tolist()


def _pearson_spearman(x: Sequence[float], y: Sequence[float]) -> dict:
    x_arr, y_arr = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x_arr) & np.isfinite(y_arr)
    x_arr, y_arr = x_arr[ok], y_arr[ok]
    if x_arr.size < 3 or np.ptp(x_arr) == 0 or np.ptp(y_arr) == 0:
        return {"n": int(x_arr.size), "pearson_r": None, "spearman_rho": None}
    return {
        "n": int(x_arr.size),
        "pearson_r": float(stats.pearsonr(x_arr, y_arr).statistic),
        "spearman_rho": float(stats.spearmanr(x_arr, y_arr).statistic),
    }


def _by_region(mapping: Mapping, what: str) -> dict[int, float]:
    out = {}
    for key, value in mapping.items():
        try:
            out[int(key)] = float(value)
        except (TypeError, ValueError):
            raise EngineInputError(
                f"{what}: regions must be numbered 1, 2, ... with numeric values, got {key!r}: {value!r}"
            ) from None
    return out


def cell_correlation_summary(
    transport: Sequence[Mapping],
    s_parameter: Mapping[str, Mapping],
    li_stoichiometry: Mapping[str, Mapping],
) -> list[dict]:
    """The whole-cell comparison table: microstructure and transport vs S and Li per region.

    Parameters
    ----------
    transport
        Rows from the transport stage, each ``{"region": 1, "direction": "y-z", "porosity":
        0.333, "tau": 1.1, "d_directional_cm2_s": 4.21e-8}``; porosity as a fraction or in %
        (as given, copied through).
    s_parameter, li_stoichiometry
        ``{state: {region: value}}``, e.g. ``{"charged": {1: 0.88, 2: 0.72, 3: 0.65}}``
        (paper Table 2); region keys may be ints or numeric strings.

    Returns
    -------
    list of dict (JSON-able)
        First one ``"kind": "region"`` row per region (ascending) with ``porosity``,
        ``tau_<direction>``, ``d_directional_cm2_s_<direction>``, ``s_<state>``,
        ``li_<state>`` and ``li_change_pct_<state>`` (change from the previous region, None
        for region 1); then ``"kind": "correlation"`` rows, one per (microstructure quantity,
        ``li_<state>``) pair, with Pearson and Spearman coefficients over the regions (None
        when fewer than 3 regions have both).

    Raises
    ------
    EngineInputError
        Malformed rows (missing keys, non-numeric values).
    """
    regions: dict[int, dict] = {}
    required = ("region", "direction", "porosity", "tau", "d_directional_cm2_s")
    for row in transport:
        missing = [k for k in required if k not in row]
        if missing:
            raise EngineInputError(f"transport row {dict(row)!r} lacks {', '.join(missing)}")
        try:
            region = int(row["region"])
            direction = str(row["direction"])
            values = {k: float(row[k]) for k in ("porosity", "tau", "d_directional_cm2_s")}
        except (TypeError, ValueError):
            raise EngineInputError(f"transport row {dict(row)!r} has non-numeric values") from None
        entry = regions.setdefault(region, {"kind": "region", "region": region})
        entry.setdefault("_porosity", []).append(values["porosity"])
        entry[f"tau_{direction}"] = values["tau"]
        entry[f"d_directional_cm2_s_{direction}"] = values["d_directional_cm2_s"]
    states = list(dict.fromkeys([*s_parameter, *li_stoichiometry]))
    s_maps = {st: _by_region(s_parameter.get(st, {}), f"S ({st})") for st in states}
    li_maps = {st: _by_region(li_stoichiometry.get(st, {}), f"Li ({st})") for st in states}
    for st in states:
        for region in [*s_maps[st], *li_maps[st]]:
            regions.setdefault(region, {"kind": "region", "region": region})
    if not regions:
        raise EngineInputError("nothing to summarise: no transport rows and no S/Li values")
    ordered = [regions[k] for k in sorted(regions)]
    for entry in ordered:
        porosities = entry.pop("_porosity", [])
        entry["porosity"] = float(np.mean(porosities)) if porosities else None
    for st in states:
        previous = None
        for entry in ordered:
            s_val = s_maps[st].get(entry["region"])
            li_val = li_maps[st].get(entry["region"])
            entry[f"s_{st}"] = s_val
            entry[f"li_{st}"] = li_val
            change = None
            if previous not in (None, 0) and li_val is not None:
                change = 100.0 * (li_val - previous) / previous
            entry[f"li_change_pct_{st}"] = change
            previous = li_val
    micro_keys = ["porosity"] + sorted(
        {k for e in ordered for k in e if k.startswith(("tau_", "d_directional_cm2_s_"))}
    )
    rows = list(ordered)
    for st in states:
        for key in micro_keys:
            x = [e.get(key) for e in ordered]
            x = [None if v is None or not math.isfinite(v) else v for v in x]
            y = [e.get(f"li_{st}") for e in ordered]
            pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
            coeffs = _pearson_spearman([p[0] for p in pairs], [p[1] for p in pairs])
            rows.append({"kind": "correlation", "x": key, "y": f"li_{st}", **coeffs})
    # A non-percolating slab has tau = inf (transport stage): JSON has no inf, show None.
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in rows
    ]


def correlation_figure(
    result: RegionCorrelation, *, x_label: str = "porosity", y_label: str = "Li stoichiometry 1 - x"
) -> dict:
    """Plotly figure JSON: density heat map, scatter, binned trend with CI error bars, fit line."""
    d = result.to_dict(include_pairs=True)
    trend = d["trend"]
    ok = [i for i, m in enumerate(trend["y_mean"]) if m is not None]
    err_plus = [
        None if trend["y_high"][i] is None else trend["y_high"][i] - trend["y_mean"][i] for i in ok
    ]
    x_line = [min(d["x"]), max(d["x"])]
    x_edges, y_edges = d["density"]["x_edges"], d["density"]["y_edges"]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": [(a + b) / 2 for a, b in zip(x_edges[:-1], x_edges[1:], strict=True)],
                "y": [(a + b) / 2 for a, b in zip(y_edges[:-1], y_edges[1:], strict=True)],
                "z": np.asarray(d["density"]["counts"]).T.tolist(),
                "colorscale": "Greys",
                "showscale": False,
                "name": "pixel density",
            },
            {
                "type": "scatter",
                "mode": "markers",
                "x": d["x"],
                "y": d["y"],
                "marker": {"size": 4, "opacity": 0.5},
                "name": "pixels",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [trend["x_center"][i] for i in ok],
                "y": [trend["y_mean"][i] for i in ok],
                "error_y": {"type": "data", "symmetric": True, "array": err_plus},
                "name": f"binned mean ({100 * result.confidence:.0f} % CI)",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": x_line,
                "y": [result.intercept + result.slope * v for v in x_line],
                "name": f"fit, r = {result.pearson_r:.2f}, rho = {result.spearman_rho:.2f}",
            },
        ],
        "layout": {
            "xaxis": {"title": {"text": x_label}},
            "yaxis": {"title": {"text": y_label}},
            "title": {"text": f"{y_label} vs {x_label} (n = {result.n})"},
        },
    }

"""Comparison reports for a cell: charged vs discharged per region, the region 1 -> 2 -> 3
gradient (as the paper's 3 % and 16 %), and DIT vs slurry-cast cells side by side.

:func:`build_cell_report` collects the latest succeeded results of a cell into plain tables
(lists of dicts, also written as CSV) and Plotly figures. :func:`render_offline_html` wraps it
into ONE self-contained HTML file (plotly.js inlined) that opens without a network.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from catalogue.models import Cell
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from projects import store

from analysis_engine.correlation import li_gradient_pct
from analysis_engine.errors import EngineInputError
from analysis_engine.io.results import read_result_array

from . import figures
from .models import JobStatus, Result

__all__ = [
    "percent_change",
    "is_masked",
    "gradient_rows",
    "charged_vs_discharged_rows",
    "diffusivity_rows",
    "base_is_noise",
    "build_cell_report",
    "build_sample_report",
    "tables_to_csv",
    "render_offline_html",
    "report_zip",
    "PLOTLY_JS",
]

PLOTLY_JS = Path(settings.BASE_DIR) / "frontend" / "static" / "vendor" / "plotly.min.js"
STATES = ("pristine", "charged", "discharged", "other")


def percent_change(
    before: float | None, after: float | None, *, before_sigma: float | None = None
) -> float | None:
    """(after - before) / before in percent, by the engine's :func:`li_gradient_pct`; None
    when undefined: a missing value, a zero base, or a base within its uncertainty
    ``before_sigma`` of zero (the ratio would be noise, e.g. -106.7 % for 1 - x = 0.00 +- 0.02).
    """
    if before is None or after is None or base_is_noise(before, before_sigma):
        return None
    try:
        return li_gradient_pct([before, after])[0]
    except EngineInputError:
        return None


def base_is_noise(base: float | None, sigma: float | None) -> bool:
    """True when ``base`` lies within its (1-sigma) uncertainty of zero."""
    return base is not None and sigma is not None and abs(base) <= abs(sigma)


def gradient_rows(
    li_by_state_region: Mapping[str, Mapping[int, float]],
    sigma_by_state_region: Mapping[str, Mapping[int, float | None]] | None = None,
) -> list[dict]:
    """Region-to-region change of Li stoichiometry (1 - x) per charge state.

    The paper (discharged DIT cell, 1 - x = 0.76, 0.73, 0.61) reports the drop as 3 % from
    region 1 to 2 and 16 % from 2 to 3; here a drop is a negative percentage relative to the
    earlier region (-3.9 %, -16.4 % for those numbers). A change whose base is within its
    uncertainty (``sigma_by_state_region``, from the results' ``*_sigma`` keys) of zero is
    left empty, with the reason under ``row["_notes"][column]``.
    """
    sigmas = sigma_by_state_region or {}
    rows = []
    for state in sorted(li_by_state_region, key=_state_order):
        by_region = li_by_state_region[state]
        sigma = sigmas.get(state, {})
        regions = sorted(by_region)
        row: dict[str, Any] = {"state": state}
        notes: dict[str, str] = {}
        for r in regions:
            row[f"li_region_{r}"] = by_region[r]
        pairs = list(zip(regions, regions[1:], strict=False))
        if len(regions) > 2:
            pairs.append((regions[0], regions[-1]))
        for a, b in pairs:
            column = f"change_{a}_to_{b}_pct"
            row[column] = _round(
                percent_change(by_region[a], by_region[b], before_sigma=sigma.get(a))
            )
            if base_is_noise(by_region[a], sigma.get(a)):
                notes[column] = (
                    f"not shown: the base, 1 - x of region {a} = {by_region[a]:.3g} "
                    f"± {sigma[a]:.2g}, is within its uncertainty of zero"
                )
        if notes:
            row["_notes"] = notes
        rows.append(row)
    return rows


def charged_vs_discharged_rows(values: Mapping[tuple[str, int], Mapping[str, float]]) -> list[dict]:
    """Per region: S and 1 - x in the charged and discharged states, and their difference."""
    regions = sorted({r for (_, r) in values})
    rows = []
    for r in regions:
        c, d = values.get(("charged", r), {}), values.get(("discharged", r), {})
        row = {
            "region": r,
            "s_charged": c.get("s"),
            "s_discharged": d.get("s"),
            "li_charged": c.get("li"),
            "li_discharged": d.get("li"),
        }
        if c.get("li") is not None and d.get("li") is not None:
            row["li_difference"] = _round(d["li"] - c["li"], 4)
        rows.append(row)
    return rows


def _round(v: float | None, n: int = 1) -> float | None:
    return None if v is None else round(float(v), n)


def _state_order(state: str) -> int:
    return STATES.index(state) if state in STATES else len(STATES)


def _latest(results: Iterable[Result]) -> dict[tuple, Result]:
    """The newest succeeded result per (charge state, region)."""
    out: dict[tuple, Result] = {}
    for res in results:
        key = (res.charge_state_id, res.region)
        if key not in out:  # results come newest first
            out[key] = res
    return out


def _cell_results(cell, kind: str) -> list[Result]:
    return list(
        Result.objects.filter(cell=cell, kind=kind, job__status=JobStatus.SUCCEEDED)
        .select_related("charge_state")
        .order_by("-created_at", "-id")
    )


def _num(summary: Mapping, *names: str) -> float | None:
    for name in names:
        v = summary.get(name)
        if isinstance(v, int | float):
            return float(v)
    return None


def _num_sigma(summary: Mapping, *names: str) -> tuple[float | None, float | None]:
    """The first of ``names`` present, with its uncertainty from the ``<name>_sigma`` key."""
    for name in names:
        v = summary.get(name)
        if isinstance(v, int | float):
            return float(v), _num(summary, f"{name}_sigma")
    return None, None


def _read_map(res: Result, name: str) -> np.ndarray | None:
    if not res.output_file:
        return None
    try:
        return read_result_array(store.local_path(res.output_file), name)
    except EngineInputError:  # a missing or unreadable file: the report goes on without it
        return None


def is_masked(result: Result) -> bool:
    """Whether a compton result was computed inside a mask (the cathode footprint)."""
    mask = (result.summary or {}).get("mask")
    return isinstance(mask, dict) and bool(mask.get("given"))


def _compton_values(cell) -> tuple[dict, dict]:
    """({(state, region): {"s", "li", "li_sigma", "stage", "li_unmasked", "result"}},
    {(state, region): li map}).

    Per state and region the newest masked compton result (inside the registered cathode
    footprint, as the paper computes S per region) is used when there is one, else the newest
    unmasked one; ``stage`` says which, ``li_unmasked`` keeps the whole-field value beside it.
    """
    results = _cell_results(cell, "compton")
    masked = _latest(r for r in results if is_masked(r))
    unmasked = _latest(r for r in results if not is_masked(r))
    values, maps = {}, {}
    for (cs_id, region), res in {**unmasked, **masked}.items():
        state = res.charge_state.state if res.charge_state_id else "unknown"
        key = (state, region or 0)
        li, li_sigma = _num_sigma(res.summary, "li_total", "li_mean")
        whole = unmasked.get((cs_id, region))
        values[key] = {
            "s": _num(res.summary, "s_total", "s_mean"),
            "li": li,
            "li_sigma": li_sigma,
            "stage": "masked" if is_masked(res) else "unmasked",
            "li_unmasked": _num(whole.summary, "li_total", "li_mean") if whole else None,
            "electrolyte_correction": figures.electrolyte_correction(res.summary)[0],
            "delta_li_electrolyte": figures.electrolyte_correction(res.summary)[1],
            "result": res.pk,
            # which calibration turned S into 1 - x (default: the paper's line), with its sigma
            "calibration": figures.calibration_label(res.summary),
            "calibration_fit": figures.summary_calibration(res.summary),
        }
        m = _read_map(res, "li_stoichiometry")
        if m is not None:
            maps[key] = m
    return values, maps


def _porosity_rows(cell) -> list[dict]:
    """Per state and depth region: porosity (segment) with tau and D_directional per direction
    (transport table, the paper's Table 1)."""
    rows = []
    segs = _latest(_cell_results(cell, "segment"))
    tables = _latest(_cell_results(cell, "transport_table"))
    for (cs_id, _), res in segs.items():
        state = res.charge_state.state if res.charge_state_id else ""
        by_region = res.summary.get("porosity_by_region") or []
        table = tables.get((cs_id, res.region))
        transport = {}
        for row in (table.summary.get("rows") or []) if table else []:
            direction = "through_plane" if row.get("direction") == "through-plane" else "in_plane"
            transport[(row.get("region"), direction)] = row
        for i, p in enumerate(by_region):
            out = {
                "state": state,
                "region": i + 1,
                "porosity_vol_pct": _round(100 * p, 2) if p is not None else None,
            }
            for direction in ("through_plane", "in_plane"):
                row = transport.get((i + 1, direction), {})
                out[f"tau_{direction}"] = _num(row, "tau")
                d = _num(row, "d_directional_cm2_s")
                out[f"d_{direction}_1e-9_cm2_s"] = _round(d * 1e9, 2) if d is not None else None
            out["result"] = res.pk
            rows.append(out)
    return rows


def _measured_diffusivity(cell) -> tuple[dict[str, Result], Result | None]:
    """Newest EIS fit (electrochem result with D_overall) per charge state name, and overall."""
    by_state: dict[str, Result] = {}
    newest = None
    for res in _cell_results(cell, "electrochem"):
        if res.summary.get("table_kind") != "eis" or _num(res.summary, "d_overall_cm2_s") is None:
            continue
        newest = newest or res
        state = res.charge_state.state if res.charge_state_id else ""
        by_state.setdefault(state, res)
    return by_state, newest


def _per_1e9(v: float | None) -> float | None:
    return None if v is None else v * 1e9


def diffusivity_rows(cell) -> list[dict]:
    """Measured D_overall (EIS fit of the cell, the paper's 6.3e-11 / 3.4e-11 cm^2/s) beside
    the simulated D_directional per depth region and direction (Eq. 4, Table 1 / Fig. S8).

    D_overall is matched to the porosity rows by charge state; a cell measured in one state
    only has that measurement beside every state. ``directional_over_overall`` is the ratio
    of the two (how much faster the pore network alone would let Li+ through).
    """
    by_state, newest = _measured_diffusivity(cell)

    def measured(state: str) -> dict:
        res = by_state.get(state, newest)
        if res is None:
            return {"d_overall_1e-9_cm2_s": None}
        return {
            "d_overall_1e-9_cm2_s": _per_1e9(_num(res.summary, "d_overall_cm2_s")),
            "d_overall_sigma_1e-9_cm2_s": _per_1e9(_num(res.summary, "d_overall_sigma_cm2_s")),
            "eis_result": res.pk,
        }

    rows = []
    for p in _porosity_rows(cell):
        for direction in ("through_plane", "in_plane"):
            d_sim = p.get(f"d_{direction}_1e-9_cm2_s")
            if d_sim is None:
                continue
            m = measured(p["state"])
            d_meas = m["d_overall_1e-9_cm2_s"]
            rows.append(
                {
                    "state": p["state"],
                    "region": p["region"],
                    "direction": direction.replace("_", "-"),
                    "d_directional_1e-9_cm2_s": d_sim,
                    **m,
                    "directional_over_overall": (_round(d_sim / d_meas, 1) if d_meas else None),
                    "result": p["result"],
                }
            )
    if not rows:  # no simulation yet: the measurement alone
        for state in sorted(by_state, key=_state_order):
            rows.append({"state": state, "region": None, "direction": None, **measured(state)})
    return rows


def _cell_overview(cell) -> dict:
    values, _ = _compton_values(cell)
    porosity = _porosity_rows(cell)
    sample = cell.cathode
    row: dict[str, Any] = {
        "cell": cell.name,
        "sample": sample.name,
        "method": sample.get_fabrication_method_display(),
        "thickness_um": sample.thickness_um,
    }
    for p in porosity:
        row[f"porosity_region_{p['region']}_pct"] = p["porosity_vol_pct"]
    _, eis = _measured_diffusivity(cell)
    row["d_overall_1e-9_cm2_s"] = _per_1e9(_num(eis.summary, "d_overall_cm2_s")) if eis else None
    for (state, region), v in sorted(
        values.items(), key=lambda kv: (_state_order(kv[0][0]), kv[0][1])
    ):
        row[f"li_{state}_region_{region}"] = v["li"]
    return row


def build_cell_report(cell, *, compare_methods: bool = True) -> dict[str, Any]:
    """Tables and figures of the comparison report for ``cell``.

    Returns ``{"cell": ..., "tables": {name: [row dicts]}, "figures": {name: plotly dict}}``.
    """
    values, maps = _compton_values(cell)
    li_by_state: dict[str, dict[int, float]] = {}
    sigma_by_state: dict[str, dict[int, float | None]] = {}
    for (state, region), v in values.items():
        if v["li"] is not None:
            li_by_state.setdefault(state, {})[region] = v["li"]
            sigma_by_state.setdefault(state, {})[region] = v["li_sigma"]
    tables: dict[str, list[dict]] = {
        "li_by_region": [
            {
                "state": s,
                "region": r,
                "s": v["s"],
                "li": v["li"],
                "li_sigma": v["li_sigma"],
                "stage": v["stage"],
                "li_unmasked": v["li_unmasked"],
                "electrolyte_correction": v["electrolyte_correction"],
                "delta_li_electrolyte": v["delta_li_electrolyte"],
                "calibration": v["calibration"],
                "result": v["result"],
            }
            for (s, r), v in sorted(
                values.items(), key=lambda kv: (_state_order(kv[0][0]), kv[0][1])
            )
        ],
        "charged_vs_discharged": charged_vs_discharged_rows(values),
        "gradient": gradient_rows(li_by_state, sigma_by_state),
        "porosity": _porosity_rows(cell),
        "diffusivity": diffusivity_rows(cell),
    }
    if compare_methods:
        others = Cell.objects.filter(project_id=cell.project_id).select_related("cathode")
        tables["methods"] = [
            _cell_overview(c) for c in others.order_by("cathode__fabrication_method", "name")
        ]

    figs: dict[str, dict] = {}
    ordered = sorted(maps, key=lambda k: (_state_order(k[0]), k[1]))
    if ordered:
        figs["li_maps"] = figures.li_maps_by_region(
            [maps[k] for k in ordered],
            [f"{s}, region {r}" for s, r in ordered],
            columns=max(sum(1 for k in ordered if k[0] == state) for state, _ in ordered),
        )
    points = [
        {"s": v["s"], "li": v["li"], "label": f"{s} r{r}"}
        for (s, r), v in sorted(values.items())
        if v["s"] is not None and v["li"] is not None
    ]
    if points:
        labels = {v["calibration"] for v in values.values()}
        first = next(iter(sorted(values.items())))[1]
        figs["s_vs_li"] = figures.s_vs_lithium(points, calibration=first["calibration_fit"])
        figs["s_vs_li"]["layout"]["title"]["text"] = (
            first["calibration"] if len(labels) == 1 else "regions used different calibrations"
        )
    if tables["gradient"]:
        figs["gradient"] = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": row["state"],
                    "x": [int(k.rsplit("_", 1)[1]) for k in row if k.startswith("li_region_")],
                    "y": [row[k] for k in row if k.startswith("li_region_")],
                }
                for row in tables["gradient"]
            ],
            "layout": {
                **figures.LAYOUT_BASE,
                "title": {"text": "Li stoichiometry through the thickness"},
                "xaxis": {"title": {"text": "region (1 = separator side)"}, "dtick": 1},
                "yaxis": {"title": {"text": "1 - x"}},
            },
        }
    methods_with_porosity = [
        row for row in tables.get("methods", []) if row.get("porosity_region_1_pct") is not None
    ]
    if methods_with_porosity:
        figs["methods"] = {
            "data": [
                {
                    "type": "bar",
                    "name": f"{row['cell']} ({row['method']})",
                    "x": ["region 1", "region 2", "region 3"],
                    "y": [row.get(f"porosity_region_{r}_pct") for r in (1, 2, 3)],
                }
                for row in methods_with_porosity
            ],
            "layout": {
                **figures.LAYOUT_BASE,
                "barmode": "group",
                "title": {"text": "Porosity by region: cells side by side"},
                "yaxis": {"title": {"text": "porosity (vol%)"}},
            },
        }
    return {"cell": str(cell), "cell_id": cell.pk, "tables": tables, "figures": figs}


def build_sample_report(sample) -> dict[str, Any]:
    """The report of every cell built from ``sample`` (an electrode), tables row-bound with a
    ``cell`` column, Li maps per cell, and the project's DIT vs slurry comparison."""
    tables: dict[str, list[dict]] = {}
    figs: dict[str, dict] = {}
    for cell in Cell.objects.filter(cathode=sample).order_by("name", "pk"):
        report = build_cell_report(cell, compare_methods=False)
        for name, rows in report["tables"].items():
            tables.setdefault(name, []).extend({"cell": cell.name, **row} for row in rows)
        for name, fig in report["figures"].items():
            fig = {**fig, "layout": {**fig.get("layout", {})}}
            title = fig["layout"].get("title", {}).get("text", name)
            fig["layout"]["title"] = {"text": f"{cell.name}: {title}"}
            figs[f"{name}_cell{cell.pk}"] = fig
    for name in ("li_by_region", "charged_vs_discharged", "gradient", "porosity", "diffusivity"):
        tables.setdefault(name, [])
    methods = Cell.objects.filter(project_id=sample.project_id).select_related("cathode")
    tables["methods"] = [
        _cell_overview(c) for c in methods.order_by("cathode__fabrication_method", "name")
    ]
    return {"sample": str(sample), "sample_id": sample.pk, "tables": tables, "figures": figs}


def tables_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """One table as CSV text; the header is the union of the row keys in first-seen order
    (annotations such as ``_notes`` left out)."""
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header and not k.startswith("_"))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in header})
    return buf.getvalue()


def render_offline_html(report: Mapping[str, Any], *, title: str) -> str:
    """The report as ONE self-contained HTML page: plotly.js and the data are inlined."""
    plotly_js = PLOTLY_JS.read_text(encoding="utf-8") if PLOTLY_JS.exists() else ""
    # "</" inside inline <script> would end the element early.
    payload = json.dumps(report["figures"]).replace("</", "<\\/")
    return render_to_string(
        "reports/offline_report.html",
        {
            "title": title,
            "report": report,
            "tables": report["tables"],
            "plotly_js": plotly_js.replace("</script", "<\\/script"),
            "figures_json": payload,
            "generated_at": timezone.now(),
        },
    )


def report_zip(report: Mapping[str, Any], *, title: str, basename: str) -> bytes:
    """A zip with the offline HTML report and one CSV per table."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{basename}.html", render_offline_html(report, title=title))
        for name, rows in report["tables"].items():
            zf.writestr(f"{basename}_{name}.csv", tables_to_csv(rows))
    return buf.getvalue()

"""End to end: the small digital twin through the platform (import, API, a real worker).

The twin is imported with ``import_beamtime``'s code path, each cell's whole-cell pipeline is
started through ``POST /api/v1/jobs/`` (``kind: pipeline``) with the stage parameters the twin
recommends, a real Celery worker runs it (PostgreSQL + Redis in CI), and the recovered values
are checked against ``ground_truth.json``:

- porosity per depth region (segment): within 4 vol% (absolute) of the planted value, and the
  DIT gradient region 1 > 2 > 3 (measured on the small twin with the twin's segmentation
  parameters, both states: DIT +0.5 / +0.4 / +0.3 vol%, SC -0.1 .. -0.7 vol%);
- Li stoichiometry per state and region (compton ``li_total``): within 0.05 of the 1 - x of the
  noise-free summed spectrum (charge sharing biases S by about -2.6 %; measured -0.002 ..
  -0.028), discharged > charged in every region and the DIT discharged gradient region 1 >
  region 3; the masked compton stage (inside correlate's registered cathode footprint, registration scale
  fixed as the twin's ``pipeline_parameters`` say) before its electrolyte/binder correction
  within 0.05 of the same closed form over the planted footprint (``li_footprint_expected``;
  measured -0.003 .. -0.033), and after it (registered non-solid fraction, the sample's
  90:5:5 from the catalogue) the planted cathode Li within 3 stated sigma + 0.01 and closer to
  it than before the correction and than the whole field, in every region and state;
- the per-pixel Li-porosity correlation of discharged region 1 is logged (not asserted: the
  per-pixel correction does not yet leave the null cell uncorrelated, see the comment below);
- tortuosity (transport table): DIT through-plane below in-plane in every region (vertical
  channels joined by sparse bridges), both finite (measured through 1.25 / 1.45 / 3.0,
  in-plane 7 - 12; paper Table 1: 1.1 / 2.3 / 2.8 and 8.7 / 10.5 / 11.2); SC (a calendered
  sheet network, phantom tau 3.6 / 3.7 / 3.2 through, 3.9 / 3.4 / 3.0 in-plane) percolates both
  ways in every region after segmentation (measured through 3.0 / 3.1 / 2.5, in-plane
  10.4 - 13.8 / 5.5 - 5.7 / 2.8 - 3.0: the segmentation narrows the sheets of region 1);
- the cell comparison report (``reports.build_cell_report`` and its page) carries these
  values: porosity, tau and D per region and direction, S and Li per region and state.
"""

from __future__ import annotations

import json
import math

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POROSITY_TOL = 0.04
LI_TOL = 0.05
# The masked stage with the electrolyte/binder correction against the planted cathode Li: its
# stated uncertainty, 3 li_total_sigma (counting, calibration, energy scale, resolution; 0.002 -
# 0.005 charged, 0.020 - 0.028 discharged), plus 0.01 for the registered footprint and
# non-solid map at the electrode's edge. Measured on this twin (seed 0): every region within
# 2.1 sigma (DIT discharged -0.058 / -0.051 / -0.035 at sigma 0.028 / 0.026 / 0.020; charged
# within 0.012). The uncorrected hole tailing and charge sharing (S -1.2 % and -2.6 %, about
# -0.04 in 1 - x at S = 2.4, docs/compton_corrections.md) stay inside that sigma, whose
# calibration term dominates in the discharged state.
LI_BIAS_ALLOWANCE = 0.01


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory):
    from analysis_engine.synthetic.commands import run_demo_data

    out = tmp_path_factory.mktemp("twin-small")
    run_demo_data(out, size="small", seed=0)
    return out


def _finished(job_id):
    from jobs.models import AnalysisJob

    job = AnalysisJob.objects.get(pk=job_id)
    return job if job.status in ("succeeded", "failed", "cancelled") else None


def test_small_twin_end_to_end(celery_worker_process, twin_dir, owner, project, api_as, client_as):
    import h5py
    import numpy as np
    from catalogue.management.commands.import_beamtime import import_beamtime
    from jobs import reports
    from jobs.models import Result
    from projects import store

    truth = json.loads((twin_dir / "ground_truth.json").read_text())
    summary = import_beamtime(twin_dir, project=project, user=owner)
    assert not summary.rejected, [d.status_message for d in summary.rejected]
    client = api_as(owner)
    cells = {c.name: c for c in summary.cells}
    job_ids = {}
    for key, cell_truth in truth["cells"].items():
        response = client.post(
            "/api/v1/jobs/",
            {
                "kind": "pipeline",
                "cell": cells[cell_truth["name"]].pk,
                "parameters": truth["pipeline_parameters"],
            },
            format="json",
        )
        assert response.status_code == 202, response.content
        job_ids[key] = response.json()["id"]

    for key, job_id in job_ids.items():
        job = celery_worker_process.wait_for(lambda j=job_id: _finished(j), timeout=1800)
        assert job.status == "succeeded", f"{key}: {job.error}"
        body = client.get(f"/api/v1/jobs/{job_id}/").json()
        assert body["status"] == "succeeded"

    for key, cell_truth in truth["cells"].items():  # every Li first, for the log
        for res in Result.objects.filter(cell=cells[cell_truth["name"]], kind="compton"):
            planted = cell_truth["xcsi"][res.charge_state.state][str(res.region)]
            matrix = res.summary.get("matrix_correction") or {}
            print(
                f"{key} {res.charge_state.state} r{res.region} "
                f"{'masked' if res.summary['mask']['given'] else 'whole'}: Li "
                f"{res.summary['li_total']:.3f} +- {res.summary['li_total_sigma']:.3f}"
                f" (before the electrolyte correction {matrix.get('li_total_measured', math.nan):.3f})"
                f", whole-field expected {planted['li_summed_expected']:.3f}, footprint expected "
                f"{planted['li_footprint_expected']:.3f}, planted cathode {planted['li_mean']:.3f}, "
                f"pixels {res.summary['mask']['pixels_inside']}"
            )

    for key, cell_truth in truth["cells"].items():
        cell = cells[cell_truth["name"]]
        results = Result.objects.filter(cell=cell).select_related("charge_state")
        # porosity per region, both states
        segs = [r for r in results if r.kind == "segment"]
        assert len(segs) == 2
        for seg in segs:
            got = seg.summary["porosity_by_region"]
            for r, (g, t) in enumerate(zip(got, cell_truth["porosity_by_region"], strict=True)):
                assert g == pytest.approx(t, abs=POROSITY_TOL), (key, seg.charge_state, r + 1)
            if key == "dit":
                assert got[0] > got[1] > got[2]
        # Li stoichiometry per state and region: the whole field, then inside the cathode
        # footprint that correlate registered (the masked stage), closer to the planted Li
        li, li_masked, checks = {}, {}, []
        for res in (r for r in results if r.kind == "compton"):
            state, region = res.charge_state.state, str(res.region)
            planted = cell_truth["xcsi"][state][region]
            masked = res.summary["mask"]["given"]
            (li_masked if masked else li)[(state, res.region)] = res.summary["li_total"]
            if not masked:
                checks.append(
                    (state, region, res.summary["li_total"], planted["li_summed_expected"])
                )
                continue
            # the masked stage: the electrolyte/binder correction applied (the twin's samples
            # record 90:5:5), the Li before it matches the closed form over the footprint, the
            # corrected Li the planted cathode Li within its stated uncertainty
            matrix = res.summary["matrix_correction"]
            assert matrix is not None, (key, state, region)
            assert matrix["composition_nmc_carbon_binder"] == pytest.approx([0.9, 0.05, 0.05])
            before = matrix["li_total_measured"]
            assert matrix["delta_li"] == pytest.approx(res.summary["li_total"] - before)
            # the correction brings every region closer to the planted cathode Li (it raises
            # discharged S, above the other phases' 1.6, and lowers charged S, below it)
            assert abs(res.summary["li_total"] - planted["li_mean"]) < abs(
                before - planted["li_mean"]
            ), (key, state, region)
            checks.append((state, region, before, planted["li_footprint_expected"]))
            tol = 3 * res.summary["li_total_sigma"] + LI_BIAS_ALLOWANCE
            assert res.summary["li_total"] == pytest.approx(planted["li_mean"], abs=tol), (
                key,
                state,
                region,
            )
        for state, region, value, expected in checks:
            assert value == pytest.approx(expected, abs=LI_TOL), (key, state, region)
        assert len(li) == 6 and len(li_masked) == 6
        # per-pixel Li (masked) against porosity in discharged region 1, logged for the record
        # but not asserted: on the small twin the null cell (SC, Li planted independent of
        # porosity) is not free of a Li-porosity correlation through the platform, neither
        # before the electrolyte correction (r -0.21 against the planted porosity, the
        # electrolyte's own share) nor after it (r +0.17: the per-pixel correction with the
        # registered non-solid map overshoots), against a bound 3 / sqrt(n) = 0.083; the DIT
        # cell's planted correlation (r +0.51 before) drops to +0.03. The region values above
        # are what the correction is validated for (docs/compton_corrections.md).
        correlate = {r.charge_state.state: r for r in results if r.kind == "correlate"}
        with h5py.File(twin_dir / "truth_maps.h5", "r") as f:
            planted_porosity = f[f"/{key}/porosity"][0]
        for res in results:
            if not (res.kind == "compton" and res.summary["mask"]["given"]):
                continue
            if (res.charge_state.state, res.region) != ("discharged", 1):
                continue
            li_map = reports._read_map(res, "li_stoichiometry")
            s_measured = reports._read_map(res, "s_measured")
            with h5py.File(store.local_path(correlate["discharged"].output_file), "r") as f:
                porosity = f["/region_1/porosity"][()]
            ok = np.isfinite(li_map) & np.isfinite(porosity) & np.isfinite(s_measured)
            ok &= np.isfinite(planted_porosity)
            r = float(np.corrcoef(li_map[ok], planted_porosity[ok])[0, 1])
            r_before = float(np.corrcoef(s_measured[ok], planted_porosity[ok])[0, 1])
            r_map = float(np.corrcoef(li_map[ok], porosity[ok])[0, 1])
            r_map_before = float(np.corrcoef(s_measured[ok], porosity[ok])[0, 1])
            bound = 3 / math.sqrt(int(ok.sum()))
            print(
                f"{key} discharged r1: per-pixel r(Li, planted porosity) {r:.3f} corrected, "
                f"{r_before:.3f} before; r(Li, registered porosity) {r_map:.3f} corrected, "
                f"{r_map_before:.3f} before; bound 3/sqrt(n) {bound:.3f} (n {int(ok.sum())})"
            )
        for (state, r), value in li_masked.items():
            planted = cell_truth["xcsi"][state][str(r)]["li_mean"]
            assert abs(value - planted) < abs(li[(state, r)] - planted), (key, state, r)
        for r in (1, 2, 3):
            assert li[("discharged", r)] > li[("charged", r)] + 0.3
        if key == "dit":
            assert li[("discharged", 1)] > li[("discharged", 3)]
        # tortuosity: SC percolates both ways in every region (the region slabs are only
        # 5 slices thick, so a blob network that is nearly 2D there would give in-plane inf)
        if key == "sc":
            tables = [r for r in results if r.kind == "transport_table"]
            assert len(tables) == 2
            for table in tables:
                for row in table.summary["rows"]:
                    assert row["tau"] is not None and math.isfinite(row["tau"]), (
                        f"SC region {row['region']} {row['direction']}: tau not finite"
                    )
        # tortuosity ordering (vertical channels: easier through the thickness)
        if key == "dit":
            tables = [r for r in results if r.kind == "transport_table"]
            assert len(tables) == 2
            for table in tables:
                rows = {(row["region"], row["direction"]): row for row in table.summary["rows"]}
                for r in (1, 2, 3):
                    through = rows[(r, "through-plane")]["tau"]
                    inplane = rows[(r, "in-plane")]["tau"]
                    assert through is not None and math.isfinite(through)
                    assert inplane is not None and math.isfinite(inplane), (
                        f"region {r}: in-plane tortuosity not finite: the transport table ran on "
                        "the whole field of view (electrode disc inside the casing) instead of "
                        "the electrode"
                    )
                    assert through < inplane

    # the cell comparison report: Table 1 rows (porosity, tau and D per region and
    # direction) and S / Li per region and state, as the page renders them
    lines = []
    for key, cell_truth in truth["cells"].items():
        cell = cells[cell_truth["name"]]
        report = reports.build_cell_report(cell)
        rows = report["tables"]["porosity"]
        assert sorted((r["state"], r["region"]) for r in rows) == [
            (s, r) for s in ("charged", "discharged") for r in (1, 2, 3)
        ]
        for row in rows:
            planted = 100 * cell_truth["porosity_by_region"][row["region"] - 1]
            assert row["porosity_vol_pct"] == pytest.approx(planted, abs=100 * POROSITY_TOL)
            assert row["tau_through_plane"] is not None
            assert row["d_through_plane_1e-9_cm2_s"] > 0
            if key == "dit":
                assert row["tau_in_plane"] > row["tau_through_plane"]
                assert row["d_in_plane_1e-9_cm2_s"] < row["d_through_plane_1e-9_cm2_s"]
            lines.append(
                f"{key} {row['state']:10s} r{row['region']} porosity {row['porosity_vol_pct']:.1f}"
                f" (planted {planted:.1f}) tau through {row['tau_through_plane']}"
                f" in-plane {row['tau_in_plane']}"
            )
        li_rows = report["tables"]["li_by_region"]
        assert len(li_rows) == 6
        for row in li_rows:
            region = cell_truth["xcsi"][row["state"]][str(row["region"])]
            planted = region["li_mean"]
            assert row["stage"] == "masked"
            assert row["electrolyte_correction"] == "applied"
            assert row["delta_li_electrolyte"] != 0
            tol = 3 * row["li_sigma"] + LI_BIAS_ALLOWANCE
            assert row["s"] is not None and row["li"] == pytest.approx(planted, abs=tol)
            assert row["li_unmasked"] == pytest.approx(region["li_summed_expected"], abs=LI_TOL)
            lines.append(
                f"{key} {row['state']:10s} r{row['region']} S {row['s']:.4f} Li {row['li']:.3f}"
                f" (cathode {planted:.3f}, electrolyte correction "
                f"{row['delta_li_electrolyte']:+.3f}; whole field {row['li_unmasked']:.3f})"
            )
        page = client_as(owner).get(f"/jobs/cells/{cell.pk}/report/")
        assert page.status_code == 200
        assert cell_truth["name"].encode() in page.content
    print("\n".join(lines))

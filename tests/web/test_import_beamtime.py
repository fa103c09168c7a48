"""``import_beamtime`` and ``load_demo``: a manifest directory into the catalogue, idempotently."""

from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from analysis_engine.io.hexitec import Calibration, write_hexitec_events
from analysis_engine.io.tables import write_table

pytestmark = pytest.mark.django_db

MANIFEST = """
beamtime: {facility: Diamond Light Source, beamline: I12, proposal: EE1, beam_energy_kev: 115}
samples:
  - {name: DIT NMC811, material: NMC811, fabrication_method: dit, thickness_um: 1000}
cells:
  - {name: DIT-1, cathode: DIT NMC811}
charge_states:
  - {cell: DIT-1, state: charged, cycle_number: 1}
files:
  - {path: xcsi/charged_r1.h5, kind: xcs_events, cell: DIT-1, state: charged, region: 1}
  - {path: xcsi/discharged_r2.h5, kind: xcs_events, cell: DIT-1, state: discharged, region: 2}
  - {path: echem/cycling.csv, kind: cycling, cell: DIT-1}
  - {path: echem/not_events.csv, kind: xcs_events, cell: DIT-1, state: charged, region: 3}
"""


def _events(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    write_hexitec_events(
        path,
        frame=np.sort(rng.integers(0, 1000, n)),
        row=rng.integers(0, 80, n),
        col=rng.integers(0, 80, n),
        adu=rng.integers(100, 3000, n).astype(np.uint16),
        calibration=Calibration(np.full((80, 80), 0.04), np.zeros((80, 80))),
    )


@pytest.fixture
def beamtime_dir(tmp_path):
    (tmp_path / "xcsi").mkdir()
    (tmp_path / "echem").mkdir()
    _events(tmp_path / "xcsi" / "charged_r1.h5", 1)
    _events(tmp_path / "xcsi" / "discharged_r2.h5", 2)
    write_table(
        tmp_path / "echem" / "cycling.csv",
        {
            "cycle": [1, 2],
            "charge_capacity_mah_g": [190, 189],
            "discharge_capacity_mah_g": [188, 188],
        },
    )
    write_table(
        tmp_path / "echem" / "not_events.csv",
        {"frequency_hz": [1.0], "z_real_ohm": [1.0], "z_imag_ohm": [0.0]},
    )
    (tmp_path / "manifest.yaml").write_text(MANIFEST)
    return tmp_path


def _counts():
    from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample

    return {m.__name__: m.objects.count() for m in (Beamtime, Sample, Cell, ChargeState, Dataset)}


def test_import_twice_creates_nothing_new(beamtime_dir, project, owner, settings):
    from catalogue.models import Dataset

    call_command("import_beamtime", str(beamtime_dir), project=str(project.pk), user=owner.username)
    first = _counts()
    assert first == {"Beamtime": 1, "Sample": 1, "Cell": 1, "ChargeState": 2, "Dataset": 4}
    call_command("import_beamtime", str(beamtime_dir), project=project.name)
    assert _counts() == first

    ds = Dataset.objects.get(name="charged_r1.h5")
    assert ds.status == "ready" and ds.kind == "xcs_events" and ds.region == 1
    assert (ds.cell.name, ds.charge_state.state, ds.beamtime.beamline) == (
        "DIT-1",
        "charged",
        "I12",
    )
    assert ds.created_by == owner and len(ds.sha256) == 64
    stored = Path(ds.file.path)
    assert stored.is_file() and stored.parent == Path(settings.MEDIA_ROOT) / "datasets" / str(
        project.pk
    )
    assert stored.read_bytes() == (beamtime_dir / "xcsi" / "charged_r1.h5").read_bytes()
    assert ds.metadata["events"] == 500
    # a state named only by a file is created with defaults
    assert Dataset.objects.get(name="discharged_r2.h5").charge_state.cycle_number == 0
    bad = Dataset.objects.get(name="not_events.csv")
    assert (
        bad.status == "rejected"
        and "uploaded as xcs_events but its content is eis" in bad.status_message
    )


def test_same_file_with_other_links_is_a_new_dataset(beamtime_dir, project):
    from catalogue.models import Dataset

    call_command("import_beamtime", str(beamtime_dir), project=str(project.pk))
    text = (beamtime_dir / "manifest.yaml").read_text().replace("region: 1}", "region: 2}")
    (beamtime_dir / "manifest.yaml").write_text(text)
    call_command("import_beamtime", str(beamtime_dir), project=str(project.pk))
    assert Dataset.objects.filter(name="charged_r1.h5").count() == 2


def test_bad_manifest_and_unknown_project_are_command_errors(beamtime_dir, project):
    with pytest.raises(CommandError, match="no project with id or name"):
        call_command("import_beamtime", str(beamtime_dir), project="nope")
    (beamtime_dir / "manifest.yaml").write_text(MANIFEST.replace("kind: cycling", "kind: cyclin"))
    with pytest.raises(CommandError, match="kind 'cyclin' is not one of"):
        call_command("import_beamtime", str(beamtime_dir), project=str(project.pk))
    assert _counts()["Dataset"] == 0


def test_load_demo_is_idempotent(tmp_path):
    """The tiny twin through load_demo (no pipelines: the web suite runs Celery eagerly)."""
    from catalogue.models import Cell, Dataset
    from projects.models import Membership

    out = tmp_path / "demo"
    call_command("load_demo", outdir=str(out), size="tiny", no_pipelines=True)
    first = _counts()
    assert first["Dataset"] == 20 and first["Cell"] == 2 and first["ChargeState"] == 4
    assert set(Dataset.objects.values_list("status", flat=True)) == {"ready"}
    assert set(Cell.objects.values_list("cathode__fabrication_method", flat=True)) == {
        "dit",
        "slurry",
    }
    assert Membership.objects.filter(
        user__username="demo", project=Cell.objects.first().project
    ).exists()
    call_command("load_demo", outdir=str(out), size="tiny", no_pipelines=True)
    assert _counts() == first

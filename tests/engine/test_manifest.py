"""Beamtime manifests (io.manifest): YAML and CSV, and every error named at once."""

import pytest

from analysis_engine.errors import EngineInputError
from analysis_engine.io.manifest import find_manifest, read_manifest

YAML = """
beamtime: {facility: Diamond Light Source, beamline: I12, proposal: EE1, start_date: 2021-06-01}
samples:
  - {name: DIT NMC811, material: NMC811, fabrication_method: dit, thickness_um: 1000}
cells:
  - {name: DIT-1, cathode: DIT NMC811}
charge_states:
  - {cell: DIT-1, state: charged, cycle_number: 1, c_rate: 0.5}
files:
  - {path: xcsi/r1.h5, kind: xcs_events, cell: DIT-1, state: charged, region: 1}
  - {path: cyc.csv, kind: cycling, cell: DIT-1}
"""


@pytest.fixture
def beamtime_dir(tmp_path):
    (tmp_path / "xcsi").mkdir()
    (tmp_path / "xcsi" / "r1.h5").write_bytes(b"x")
    (tmp_path / "cyc.csv").write_text("x")
    return tmp_path


def test_yaml_manifest(beamtime_dir):
    (beamtime_dir / "manifest.yaml").write_text(YAML)
    m = read_manifest(beamtime_dir)
    assert m.beamtime["beamline"] == "I12" and str(m.beamtime["start_date"]) == "2021-06-01"
    assert m.samples[0]["thickness_um"] == 1000.0
    assert m.charge_states[0] == {
        "cell": "DIT-1",
        "state": "charged",
        "cycle_number": 1,
        "c_rate": 0.5,
    }
    f = m.files[0]
    assert (f.kind, f.cell, f.state, f.region) == ("xcs_events", "DIT-1", "charged", 1)
    assert f.path == (beamtime_dir / "xcsi" / "r1.h5").resolve()


def test_csv_manifest_defines_cells_and_samples(beamtime_dir):
    (beamtime_dir / "manifest.csv").write_text(
        "path,kind,sample,fabrication_method,cell,state,region,facility,beamline\n"
        "xcsi/r1.h5,xcs_events,DIT,dit,DIT-1,charged,1,Diamond,I12\n"
        "cyc.csv,cycling,DIT,dit,DIT-1,,,Diamond,I12\n"
    )
    m = read_manifest(find_manifest(beamtime_dir))
    assert m.cells == ({"name": "DIT-1", "cathode": "DIT"},)
    assert m.samples[0]["fabrication_method"] == "dit"
    assert m.beamtime == {"facility": "Diamond", "beamline": "I12"}
    assert [f.region for f in m.files] == [1, None]


def test_every_problem_is_listed(beamtime_dir):
    (beamtime_dir / "manifest.yaml").write_text(
        YAML
        + """
  - {path: missing.h5, kind: xcs_events, cell: DIT-1, state: charged, region: 2}
  - {path: cyc.csv, kind: cycling, cell: DIT-1}
  - {path: ../outside.h5, kind: xct_projections}
  - {path: a.h5, kind: spectra_thing, cell: DIT-9, state: full, region: 0}
  - {path: cyc.csv, kind: eis, region: two}
"""
    )
    with pytest.raises(EngineInputError) as err:
        read_manifest(beamtime_dir)
    text = str(err.value)
    for expected in (
        "file missing.h5 not found",
        "cyc.csv is already listed",
        "must be relative to the manifest's directory",
        "kind 'spectra_thing' is not one of",
        "cell 'DIT-9' is not defined under cells",
        "state 'full' is not one of",
        "region must be a whole number >= 1",
        "region must be a whole number, got 'two'",
    ):
        assert expected in text, expected


def test_structure_errors(tmp_path):
    with pytest.raises(EngineInputError, match="holds no manifest"):
        find_manifest(tmp_path)
    (tmp_path / "manifest.yaml").write_text("files: [\n")
    with pytest.raises(EngineInputError, match="not valid YAML"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.yaml").write_text("cells:\n  - {name: C, cathode: nope}\nfilez: []\n")
    with pytest.raises(EngineInputError, match="unknown top-level key"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.yaml").write_text("cells:\n  - {name: C, cathode: nope}\n")
    with pytest.raises(EngineInputError, match="cathode 'nope' is not a sample"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.yaml").unlink()
    (tmp_path / "manifest.csv").write_text("file,kind\nx,cycling\n")
    with pytest.raises(EngineInputError, match="lacks the column"):
        read_manifest(tmp_path)

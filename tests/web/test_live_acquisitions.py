"""Live acquisitions over the REST API: numbered chunks, retries, gaps, finish, push.

Expected spectra come from the batch route: ``run_events`` on the complete event file.
"""

import io
import json

import numpy as np
import pytest
from catalogue.models import Dataset
from django.urls import reverse
from live.models import LiveAcquisition, LiveEvent

from analysis_engine.events.commands import run_events
from analysis_engine.io.hexitec import write_hexitec_events
from analysis_engine.io.spectra import read_spectra
from analysis_engine.synthetic.hexitec import beamline_spectrum, generate_events

pytestmark = pytest.mark.django_db(transaction=True)
OPTIONS = {"bin_width_kev": 0.5, "range_kev": [0.0, 130.0], "target_counts_per_pixel": 50}


@pytest.fixture(scope="module")
def events():
    e = np.arange(0.025, 130.0, 0.05)
    return generate_events(e, beamline_spectrum(e), counts=3.0, n_frames=2000,
                           sharing_fraction=0.4, seed=3)  # fmt: skip


def chunk_bytes(ev, a, b) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, frame=ev.frame[a:b], row=ev.row[a:b], col=ev.col[a:b],
             energy_kev=ev.energy_kev[a:b])  # fmt: skip
    return buffer.getvalue()


def put(client, acq_id, seq, body):
    return client.put(f"/api/v1/live/acquisitions/{acq_id}/chunks/{seq}/", body,
                      content_type="application/octet-stream")  # fmt: skip


def create(client, project, **extra):
    r = client.post("/api/v1/live/acquisitions/",
                    {"project": project.pk, "name": "operando-1", "options": OPTIONS, **extra},
                    format="json")  # fmt: skip
    return r


def test_chunks_out_of_order_and_retried_give_the_batch_spectra(
    project, analyst, api_as, events, tmp_path
):
    client = api_as(analyst)
    r = create(client, project)
    assert r.status_code == 201, r.content
    acq_id = r.json()["id"]
    n = len(events.frame)
    cuts = [0, *sorted(np.random.default_rng(1).choice(np.arange(1, n), 7, replace=False)), n]
    bodies = [chunk_bytes(events, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]

    # chunk 2 arrives before 1: stored, reported as a gap, not clustered yet
    assert put(client, acq_id, 0, bodies[0]).status_code == 201
    r = put(client, acq_id, 2, bodies[2])
    assert r.status_code == 201 and r.json()["missing"] == [1]
    assert LiveAcquisition.objects.get(pk=acq_id).processed_seq == 0
    # finishing with a gap is refused
    assert client.post(f"/api/v1/live/acquisitions/{acq_id}/finish/").status_code == 409
    r = put(client, acq_id, 1, bodies[1])
    assert r.json()["missing"] == []
    assert LiveAcquisition.objects.get(pk=acq_id).processed_seq == 2
    # a retry of chunk 1 is a no-op; other bytes under its number are refused
    counted = LiveAcquisition.objects.get(pk=acq_id).events_received
    r = put(client, acq_id, 1, bodies[1])
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert put(client, acq_id, 1, bodies[3]).status_code == 409
    assert LiveAcquisition.objects.get(pk=acq_id).events_received == counted
    for seq in range(3, len(bodies)):
        assert put(client, acq_id, seq, bodies[seq]).status_code == 201
    r = client.post(f"/api/v1/live/acquisitions/{acq_id}/finish/")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "finished" and r.json()["events_received"] == n

    path = tmp_path / "complete.h5"
    write_hexitec_events(path, frame=events.frame, row=events.row, col=events.col,
                         energy_kev=events.energy_kev, n_frames=events.n_frames)  # fmt: skip
    run_events(path, tmp_path / "batch.h5", bin_width_kev=0.5, range_kev=(0.0, 130.0))
    _, batch, _ = read_spectra(tmp_path / "batch.h5")
    dataset = Dataset.objects.get(pk=r.json()["spectra"])
    assert dataset.kind == "xcs_spectra" and dataset.project_id == project.pk
    _, live, _ = read_spectra(dataset.file.path)
    np.testing.assert_array_equal(live, batch)

    # the maps were pushed to the project's stream: Li with uncertainties, counts per pixel
    pushed = LiveEvent.objects.filter(project=project, topic="live-map").last()
    assert pushed is not None and pushed.payload["status"] == "finished"
    counts = np.array(pushed.payload["counts"])
    np.testing.assert_array_equal(counts, batch.sum(axis=-1))
    assert len(pushed.payload["li"]) == 80 and len(pushed.payload["li_sigma"][0]) == 80
    assert pushed.payload["events_counted"] == int(batch.sum())
    # finished: no more chunks
    assert put(client, acq_id, 99, bodies[0]).status_code == 409


def test_bad_chunks_and_other_projects(project, analyst, viewer, outsider, api_as, events):
    client = api_as(analyst)
    acq_id = create(client, project).json()["id"]
    r = put(client, acq_id, 0, b"not an npz")
    assert r.status_code == 400 and "npz" in r.json()["detail"]
    buffer = io.BytesIO()
    np.savez(buffer, frame=events.frame[:5], row=events.row[:5])
    r = put(client, acq_id, 0, buffer.getvalue())
    assert r.status_code == 400 and "col" in r.json()["detail"]
    assert create(client, project, options={"colour": 1}).status_code == 400
    # a viewer reads but may not push; an outsider does not see it at all
    assert api_as(viewer).get(f"/api/v1/live/acquisitions/{acq_id}/").status_code == 200
    assert put(api_as(viewer), acq_id, 0, chunk_bytes(events, 0, 10)).status_code == 403
    outsider_client = api_as(outsider)
    assert outsider_client.get(f"/api/v1/live/acquisitions/{acq_id}/").status_code == 404
    assert put(outsider_client, acq_id, 0, chunk_bytes(events, 0, 10)).status_code == 404
    assert outsider_client.get("/api/v1/live/acquisitions/").json() == []


def test_live_page_for_members_only(project, analyst, outsider, api_as, client_as):
    acq_id = create(api_as(analyst), project).json()["id"]
    page = client_as(analyst).get(f"/live/{acq_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="live-li-map"' in html and "js/live.js" in html and "vendor/plotly.min.js" in html
    assert f"/live/{acq_id}/" in client_as(analyst).get("/live/").content.decode()
    assert client_as(outsider).get(f"/live/{acq_id}/").status_code == 404


def test_live_pages_are_linked_from_the_navigation_and_the_dataset_pages(
    project, analyst, outsider, client_as, events
):
    from live import services

    acq = services.create_acquisition(project=project, user=analyst, name="linked",
                                      options=OPTIONS)  # fmt: skip
    services.append_chunk(acq, 0, chunk_bytes(events, 0, 500))
    acq = services.finish(acq.pk)
    client = client_as(analyst)
    for url in ("/", reverse("catalogue:dataset_list"), f"/live/{acq.pk}/"):
        html = client.get(url).content.decode()
        assert 'id="nav-live" href="/live/"' in html, url
    assert (
        'id="datasets-live" href="/live/"'
        in client.get(reverse("catalogue:dataset_list")).content.decode()
    )
    dataset_page = client.get(acq.spectra.get_absolute_url()).content.decode()
    assert f'id="dataset-live" href="/live/{acq.pk}/"' in dataset_page
    live_page = client.get(f"/live/{acq.pk}/").content.decode()
    assert (
        'id="live-all" href="/live/"' in live_page and acq.project.get_absolute_url() in live_page
    )
    # another dataset of the project has no live acquisition: no link
    other = Dataset.objects.create(project=project, name="plain.h5", kind="xcs_spectra")
    assert 'id="dataset-live"' not in client.get(other.get_absolute_url()).content.decode()


def test_replay_of_an_operando_acquisition_equals_the_batch_command(
    project, analyst, api_as, tmp_path
):
    from django.core.management import call_command

    from analysis_engine.synthetic.operando import operando_events

    labels = np.repeat(np.arange(1, 4), [27, 27, 26])[:, None] * np.ones((1, 80), dtype=int)
    ev = operando_events(labels, np.array([0.4, 0.5, 0.6]), np.array([0.02, 0.0, -0.02]),
                         duration_s=2.0, frame_rate_hz=2000.0, counts_per_pixel_per_s=4.0,
                         seed=1)  # fmt: skip
    path = tmp_path / "operando.h5"
    write_hexitec_events(path, frame=ev.frame, row=ev.row, col=ev.col, energy_kev=ev.energy_kev,
                         n_frames=ev.n_frames, frame_rate_hz=2000.0)  # fmt: skip
    out = io.StringIO()
    call_command("live_replay", str(path), "--project", str(project.pk), "--speed", "0",
                 "--chunk-s", "0.3", "--options", '{"bin_width_kev": 0.5}', stdout=out,
                 stderr=io.StringIO())  # fmt: skip
    summary = json.loads(out.getvalue())
    acq = LiveAcquisition.objects.get(pk=summary["acquisition"])
    assert acq.status == "finished" and acq.processed_seq >= 5  # really arrived in pieces
    run_events(path, tmp_path / "batch.h5", bin_width_kev=0.5)
    _, batch, _ = read_spectra(tmp_path / "batch.h5")
    _, live, _ = read_spectra(acq.spectra.file.path)
    np.testing.assert_array_equal(live, batch)

    # re-binned in time: 1 s slices of the 2 s replay, three depth regions, CSV export
    client = api_as(analyst)
    r = client.get(f"/api/v1/live/acquisitions/{acq.pk}/time-resolved/?slice_s=1&regions=3")
    assert r.status_code == 200, r.content
    data = r.json()
    assert data["t_s"] == [0.5, 1.5] and len(data["li_maps"]) == 2
    assert len(data["li_maps"][0]) == 80 and [g["region"] for g in data["regions"]] == [1, 2, 3]
    # planted Li 0.4 / 0.5 / 0.6 at t = 0 (rates 0.02, 0, -0.02 per s): each slice within 5 sigma
    for region, li0, rate in zip(data["regions"], [0.4, 0.5, 0.6], [0.02, 0.0, -0.02], strict=True):
        for t, li, sigma in zip(data["t_s"], region["li"], region["li_sigma"], strict=True):
            assert abs(li - (li0 + rate * t)) < 5 * sigma
    csv = client.get(f"/api/v1/live/acquisitions/{acq.pk}/time-resolved/?slice_s=1&export=csv")
    assert csv["Content-Type"] == "text/csv"
    assert csv.content.decode().splitlines()[0] == "t_s,region,li,li_sigma"
    assert len(csv.content.decode().splitlines()) == 1 + 3 * 2
    bad = client.get(f"/api/v1/live/acquisitions/{acq.pk}/time-resolved/?slice_s=0.00001")
    assert bad.status_code == 400


def test_folder_watch_takes_complete_blocks_and_waits_for_a_partial_one(project, events, tmp_path):
    from live import services

    folder = tmp_path / "acq"
    folder.mkdir()
    n = len(events.frame)
    cuts = [0, n // 5 + 3, n // 2 + 1, 3 * n // 4, n]  # cut inside frames, not at them

    def write_block(i):
        a, b = cuts[i], cuts[i + 1]
        write_hexitec_events(folder / f"block-{i:06d}.h5", frame=events.frame[a:b],
                             row=events.row[a:b], col=events.col[a:b],
                             energy_kev=events.energy_kev[a:b])  # fmt: skip

    acq = services.create_acquisition(project=project, user=None, name="watched",
                                      options={"bin_width_kev": 0.5, "range_kev": [0, 130]})  # fmt: skip
    write_block(0)
    write_block(1)
    (folder / "block-000002.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # being written
    assert services.scan_folder(acq, folder) == [0, 1]
    assert services.scan_folder(acq, folder) == []  # rescans are idempotent
    services.process(acq.pk)
    assert LiveAcquisition.objects.get(pk=acq.pk).processed_seq == 1
    write_block(2)
    write_block(3)
    assert services.scan_folder(acq, folder) == [2, 3]
    acq = services.finish(acq.pk)
    assert acq.events_received == n

    path = tmp_path / "complete.h5"
    write_hexitec_events(path, frame=events.frame, row=events.row, col=events.col,
                         energy_kev=events.energy_kev, n_frames=events.n_frames)  # fmt: skip
    run_events(path, tmp_path / "batch.h5", bin_width_kev=0.5, range_kev=(0.0, 130.0))
    _, batch, _ = read_spectra(tmp_path / "batch.h5")
    _, live, _ = read_spectra(acq.spectra.file.path)
    np.testing.assert_array_equal(live, batch)


def test_live_watch_command_follows_a_folder_until_idle(project, events, tmp_path):
    from django.core.management import CommandError, call_command

    folder = tmp_path / "run"
    folder.mkdir()
    half = len(events.frame) // 2 + 7
    for i, (a, b) in enumerate([(0, half), (half, len(events.frame))]):
        write_hexitec_events(folder / f"b{i}.h5", frame=events.frame[a:b], row=events.row[a:b],
                             col=events.col[a:b], energy_kev=events.energy_kev[a:b])  # fmt: skip
    out = io.StringIO()
    call_command("live_watch", str(folder), "--project", str(project.pk), "--poll-s", "0.05",
                 "--idle-s", "0.3", stdout=out)  # fmt: skip
    acq = LiveAcquisition.objects.get(pk=json.loads(out.getvalue())["acquisition"])
    assert acq.status == "finished" and acq.events_received == len(events.frame)
    with pytest.raises(CommandError, match="not a folder"):
        call_command("live_watch", str(tmp_path / "nope"), "--project", str(project.pk))


def test_a_worker_killed_after_its_checkpoint_but_before_commit_double_counts_nothing(
    project, events, tmp_path
):
    from live import services

    from analysis_engine.io.live import save_live_state

    n = len(events.frame)
    cuts = [0, n // 3 + 5, 2 * n // 3 - 4, n]
    bodies = [chunk_bytes(events, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    acq = services.create_acquisition(project=project, user=None, name="crash",
                                      options={"bin_width_kev": 0.5, "range_kev": [0, 130]})  # fmt: skip
    for seq in (0, 1):
        services.append_chunk(acq, seq, bodies[seq])
    services.process(acq.pk)
    acq.refresh_from_db()
    assert acq.processed_seq == 1
    services.append_chunk(acq, 2, bodies[2])
    # the dead worker got as far as writing its next checkpoint (chunk 2 included) and died
    # before its transaction committed: the row still points at the checkpoint after chunk 1
    dead = services._load(acq)
    dead.add_events(events.frame[cuts[2]:], events.row[cuts[2]:], events.col[cuts[2]:],
                    events.energy_kev[cuts[2]:])  # fmt: skip
    save_live_state(services.acquisition_dir(acq) / "state-000000002.npz", dead.state())
    # the next worker resumes from the committed checkpoint: chunk 2 counted exactly once
    assert services.process(acq.pk) == 1
    acq = services.finish(acq.pk)
    assert acq.events_received == n
    path = tmp_path / "complete.h5"
    write_hexitec_events(path, frame=events.frame, row=events.row, col=events.col,
                         energy_kev=events.energy_kev, n_frames=events.n_frames)  # fmt: skip
    run_events(path, tmp_path / "batch.h5", bin_width_kev=0.5, range_kev=(0.0, 130.0))
    _, batch, _ = read_spectra(tmp_path / "batch.h5")
    _, live, _ = read_spectra(acq.spectra.file.path)
    np.testing.assert_array_equal(live, batch)


def test_folder_watch_of_a_growing_bin_file_resumes_after_a_kill_and_equals_the_batch(
    project, tmp_path
):
    from django.core.management import call_command
    from live import services

    from analysis_engine.errors import EngineInputError
    from analysis_engine.io.hexitec_native import (
        FRAME_BYTES,
        scramble_frames,
        write_calibration_arrays,
    )
    from analysis_engine.io.live import save_live_state
    from analysis_engine.synthetic.hexitec import generate_frames, random_calibration

    e = np.arange(0.025, 130.0, 0.05)
    gain, offset = random_calibration(seed=2)
    syn = generate_frames(e, beamline_spectrum(e), counts=1.5, n_frames=400, seed=4,
                          gain_kev_per_adu=gain, offset_kev=offset, sharing_fraction=0.3)  # fmt: skip
    threshold = np.ceil((5.0 - offset) / gain)
    cal = write_calibration_arrays(tmp_path / "cal", gain, offset, threshold)
    calibration = {name: str(path) for name, path in cal.items()}
    data = scramble_frames(syn.frames_adu).astype("<u2").tobytes()
    folder = tmp_path / "detector"
    folder.mkdir()
    target = folder / "run-0001.bin"

    def write(a, b):
        with open(target, "ab") as fh:
            fh.write(data[a:b])

    with pytest.raises(EngineInputError, match="calibration"):
        services.create_acquisition(project=project, user=None, name="x",
                                    options={"input": "bin"})  # fmt: skip
    acq = services.create_acquisition(project=project, user=None, name="raw",
                                      options={**OPTIONS, "input": "bin"},
                                      calibration=calibration)  # fmt: skip
    cut1, cut2 = 120 * FRAME_BYTES + 5000, 260 * FRAME_BYTES + 1  # both mid-frame
    write(0, cut1)
    assert services.scan_bin_folder(acq, folder, max_frames=100) == [0, 1]
    assert services.scan_bin_folder(acq, folder) == []  # the partial frame waits
    services.process(acq.pk, force_map=True)
    acq.refresh_from_db()
    assert acq.summary["bin_position"] == ["run-0001.bin", 120 * FRAME_BYTES]
    with pytest.raises(services.LiveConflict, match=r"\.bin"):
        services.append_chunk(acq, 9, b"anything")

    write(cut1, cut2)
    assert services.scan_bin_folder(acq, folder) == [2]  # frames 120..259
    # the worker clustering chunk 2 wrote its checkpoint and was killed before committing
    dead = services._load(acq)
    dead.add_frames(syn.frames_adu[120:260])
    save_live_state(services.acquisition_dir(acq) / "state-000000002.npz", dead.state())
    write(cut2, len(data))
    out = io.StringIO()
    call_command("live_watch", str(folder), "--acquisition", str(acq.pk), "--poll-s", "0.05",
                 "--idle-s", "0.3", stdout=out)  # fmt: skip
    acq.refresh_from_db()
    assert acq.status == "finished"
    assert [c.offset for c in acq.chunks.order_by("seq")] == [
        0, 100 * FRAME_BYTES, 120 * FRAME_BYTES, 260 * FRAME_BYTES
    ]  # fmt: skip

    summary = run_events(target, tmp_path / "batch.h5", bin_width_kev=0.5,
                         range_kev=(0.0, 130.0), **{f"{k}_path": v for k, v in cal.items()})  # fmt: skip
    _, batch, _ = read_spectra(tmp_path / "batch.h5")
    _, live, _ = read_spectra(acq.spectra.file.path)
    np.testing.assert_array_equal(live, batch)
    assert acq.events_received == summary["events_in"]
    assert acq.frames == summary["frames"] == 400


def test_a_worker_that_is_behind_skips_maps_nobody_would_see(project, events, monkeypatch):
    from django.test import override_settings
    from live import services

    acq = services.create_acquisition(project=project, user=None, name="behind",
                                      options=OPTIONS)  # fmt: skip
    cuts = np.linspace(0, len(events.frame), 5).astype(int) + np.array([0, 3, 5, 7, 0])
    bodies = [chunk_bytes(events, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    services.append_chunk(acq, 0, bodies[0])
    add = services._add_chunk

    def arriving(live, acq_, chunk):  # chunk seq + 1 arrives while seq is being clustered
        add(live, acq_, chunk)
        if chunk.seq + 1 < len(bodies):
            services.append_chunk(acq_, chunk.seq + 1, bodies[chunk.seq + 1])

    def mapped():
        maps = LiveEvent.objects.filter(topic="live-map").values_list("payload", flat=True)
        return [m["processed_seq"] for m in maps]

    monkeypatch.setattr(services, "_add_chunk", arriving)
    with override_settings(CORRELI_LIVE_MAP_INTERVAL_S=0):
        services._last_map.pop(acq.pk, None)
        assert services.process(acq.pk) == 1
        assert mapped() == [0]  # the first map is never held back
        assert services.process(acq.pk) == 1
        assert mapped() == [0]  # chunk 2 was already waiting: no map of chunk 1
        services._last_map[acq.pk] -= services.MAX_MAP_DEFER_S  # no map for that long
        assert services.process(acq.pk) == 1
        assert mapped() == [0, 2]  # pushed although chunk 3 is waiting
        assert services.process(acq.pk) == 1
        assert mapped() == [0, 2, 3]  # caught up: pushed at once
    acq = services.finish(acq.pk)
    assert acq.events_received == len(events.frame)


def test_the_next_step_continues_from_memory_and_a_stale_memory_is_never_used(
    project, events, monkeypatch, tmp_path
):
    from live import services

    n = len(events.frame)
    cuts = [0, n // 3 + 1, 2 * n // 3 + 2, n]
    bodies = [chunk_bytes(events, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    acq = services.create_acquisition(project=project, user=None, name="resident",
                                      options=OPTIONS)  # fmt: skip
    services.append_chunk(acq, 0, bodies[0])
    services.process(acq.pk)
    reads = []
    real_load = services.load_live_state
    monkeypatch.setattr(services, "load_live_state", lambda p: reads.append(p) or real_load(p))
    services.append_chunk(acq, 1, bodies[1])
    services.process(acq.pk)
    assert reads == []  # continued from memory: the checkpoint was not read back
    # another worker took step 2 meanwhile: this process's memory is behind the row
    stale = services._resident[acq.pk]
    services.append_chunk(acq, 2, bodies[2])
    services.process(acq.pk)
    services._resident[acq.pk] = stale
    acq = services.finish(acq.pk)
    assert len(reads) == 1  # the stale memory was dropped, the checkpoint read
    assert acq.events_received == n
    path = tmp_path / "complete.h5"
    write_hexitec_events(path, frame=events.frame, row=events.row, col=events.col,
                         energy_kev=events.energy_kev, n_frames=events.n_frames)  # fmt: skip
    run_events(path, tmp_path / "batch.h5", bin_width_kev=0.5, range_kev=(0.0, 130.0))
    _, live, _ = read_spectra(acq.spectra.file.path)
    np.testing.assert_array_equal(live, read_spectra(tmp_path / "batch.h5")[1])


def test_a_resumed_worker_reclusters_the_chunks_after_a_sparse_checkpoint(
    project, events, tmp_path
):
    from django.test import override_settings
    from live import services

    n = len(events.frame)
    cuts = np.linspace(0, n, 6).astype(int) + np.array([0, 1, 2, 3, 4, 0])
    bodies = [chunk_bytes(events, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    acq = services.create_acquisition(project=project, user=None, name="sparse",
                                      options=OPTIONS)  # fmt: skip
    with override_settings(CORRELI_LIVE_CHECKPOINT_S=3600):
        for seq in range(4):
            services.append_chunk(acq, seq, bodies[seq])
            services.process(acq.pk)
        acq.refresh_from_db()
        assert acq.processed_seq == 3 and acq.checkpoint.endswith("state-000000000.npz")
        assert len(list(services.acquisition_dir(acq).glob("state-*.npz"))) == 1
        services._resident.clear()  # the worker was killed: a new one starts
        services.append_chunk(acq, 4, bodies[4])
        assert services.process(acq.pk) == 1  # checkpoint of chunk 0 + chunks 1..3 again + 4
        acq = services.finish(acq.pk)
    assert acq.events_received == n
    path = tmp_path / "complete.h5"
    write_hexitec_events(path, frame=events.frame, row=events.row, col=events.col,
                         energy_kev=events.energy_kev, n_frames=events.n_frames)  # fmt: skip
    run_events(path, tmp_path / "batch.h5", bin_width_kev=0.5, range_kev=(0.0, 130.0))
    _, live, _ = read_spectra(acq.spectra.file.path)
    np.testing.assert_array_equal(live, read_spectra(tmp_path / "batch.h5")[1])


def test_a_map_held_back_by_the_interval_is_pushed_when_due(project, events):
    from django.test import override_settings
    from live import services

    acq = services.create_acquisition(project=project, user=None, name="held", options=OPTIONS)
    n = len(events.frame)

    def mapped():
        maps = LiveEvent.objects.filter(topic="live-map").values_list("payload", flat=True)
        return [m["processed_seq"] for m in maps]

    with override_settings(CORRELI_LIVE_MAP_INTERVAL_S=3600):
        services._last_map.pop(acq.pk, None)
        services.append_chunk(acq, 0, chunk_bytes(events, 0, n // 2))
        services.process(acq.pk)
        assert mapped() == [0] and services.held_map_due_in(acq.pk) is None
        services.append_chunk(acq, 1, chunk_bytes(events, n // 2, n))
        services.process(acq.pk)
        assert mapped() == [0]  # held back by the interval ...
        assert 3500 < services.held_map_due_in(acq.pk) <= 3600  # ... and due then
        assert services.process(acq.pk) == 0 and mapped() == [0]  # nothing new: still held
        assert services.process(acq.pk, held_map=True) == 0
        assert mapped() == [0, 1] and services.held_map_due_in(acq.pk) is None
        assert services.process(acq.pk, held_map=True) == 0 and mapped() == [0, 1]


def test_the_worker_task_schedules_the_held_map(project, events, monkeypatch):
    from django.test import override_settings
    from live import services, tasks

    acq = services.create_acquisition(project=project, user=None, name="task", options=OPTIONS)
    scheduled = []
    monkeypatch.setattr(tasks.process_acquisition, "apply_async",
                        lambda args, countdown: scheduled.append((args, countdown)))  # fmt: skip
    n = len(events.frame)
    with override_settings(CORRELI_LIVE_MAP_INTERVAL_S=60):
        services._last_map.pop(acq.pk, None)
        services.append_chunk(acq, 0, chunk_bytes(events, 0, n // 2))
        assert tasks.process_acquisition(acq.pk) == 1 and scheduled == []  # map pushed
        services.append_chunk(acq, 1, chunk_bytes(events, n // 2, n))
        assert tasks.process_acquisition(acq.pk) == 1  # map held back: a call is scheduled
        [((acq_id, held), countdown)] = scheduled
        assert acq_id == acq.pk and held is True and 55 < countdown <= 60
        assert tasks.process_acquisition(acq.pk, True) == 0  # the delayed call pushes it
        assert services.held_map_due_in(acq.pk) is None and len(scheduled) == 1
    payloads = LiveEvent.objects.filter(topic="live-map").values_list("payload", flat=True)
    assert [m["processed_seq"] for m in payloads] == [0, 1]

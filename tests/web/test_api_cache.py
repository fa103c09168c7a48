"""The dataset list's lean read path and its page cache (``catalogue.api.cache``).

The lean path must give exactly ``DatasetSerializer``'s JSON; the cache must never serve a page
to another user or after any write that changes it.
"""

import json

import pytest
from catalogue.api import cache as list_cache
from catalogue.api.serializers import DatasetSerializer
from catalogue.models import Dataset
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from projects.permissions import projects_for
from rest_framework.test import APIClient, APIRequestFactory

URL = "/api/v1/datasets/"


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def names(client, url=URL):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def page_cache(settings):
    settings.CORRELI_API_LIST_CACHE = True
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin"])
def test_lean_list_equals_the_serializer(time_zone, settings, project, owner, factories):
    settings.TIME_ZONE = time_zone
    cell = factories.make_cell(project)
    state = factories.make_charge_state(project, cell=cell)
    beamtime = factories.make_beamtime(project)
    factories.make_dataset(project, name="a-file", content=b"abc", kind="xcs_events", region=2)
    factories.make_dataset(
        project,
        name="b-links",
        charge_state=state,
        beamtime=beamtime,
        metadata={"energy_kev": [115.0, 116.5], "note": "é"},
        notes="n",
        created_by=owner,
    )
    factories.make_dataset(project, name="c-plain")

    body = client_for(owner).get(URL + "?page_size=2&ordering=name").json()
    assert body["count"] == 3
    assert body["next"] == "http://testserver/api/v1/datasets/?ordering=name&page=2&page_size=2"

    request = APIRequestFactory().get(URL)
    expected = DatasetSerializer(
        Dataset.objects.order_by("name")[:2], many=True, context={"request": request}
    ).data
    assert json.dumps(body["results"]) == json.dumps(expected)
    with_file = body["results"][0]
    assert with_file["download_url"] == (
        f"http://testserver/api/v1/datasets/{with_file['id']}/download/"
    )
    if time_zone == "UTC":
        assert with_file["created_at"].endswith("Z")
    else:
        assert with_file["created_at"][-6:] in ("+01:00", "+02:00")


def test_the_page_cache_is_off_for_a_per_process_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not list_cache.enabled()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
        }
    }
    assert list_cache.enabled()
    settings.CORRELI_API_LIST_CACHE = False
    assert not list_cache.enabled()


def test_a_repeat_is_served_from_the_cache(page_cache, project, owner, factories):
    factories.make_dataset(project, name="a")
    client = client_for(owner)
    with CaptureQueriesContext(connection) as first:
        first_body = client.get(URL).json()
    with CaptureQueriesContext(connection) as second:
        second_body = client.get(URL).json()
    assert second_body == first_body
    assert any("catalogue_dataset" in q["sql"] for q in first.captured_queries)
    assert not any("catalogue_dataset" in q["sql"] for q in second.captured_queries)
    # another query string is another page
    assert names(client, URL + "?name=ignored&page_size=1") == ["a"]


def test_writes_invalidate_the_cached_list(page_cache, project, owner, analyst, factories):
    dataset = factories.make_dataset(project, name="before")
    client = client_for(owner)
    assert names(client) == ["before"]
    assert names(client) == ["before"]  # cached

    # a write through the API, by another member
    response = client_for(analyst).patch(f"{URL}{dataset.pk}/", {"name": "renamed"})
    assert response.status_code == 200
    assert names(client) == ["renamed"]

    # ORM saves, creation and deletion
    dataset.refresh_from_db()
    dataset.status = "rejected"
    dataset.save()
    assert client.get(URL).json()["results"][0]["status"] == "rejected"
    other = factories.make_dataset(project, name="second")
    assert sorted(names(client)) == ["renamed", "second"]
    other.delete()
    assert names(client) == ["renamed"]


def test_a_catalogue_write_invalidates_filtered_pages(page_cache, project, owner, factories):
    sample = factories.make_sample(project, material="NMC811")
    cell = factories.make_cell(project, cathode=sample)
    factories.make_dataset(project, name="on-cell", cell=cell)
    client = client_for(owner)
    url = URL + "?material=NMC811"
    assert names(client, url) == ["on-cell"]
    sample.material = "LFP"
    sample.save()
    assert names(client, url) == []


def test_another_users_page_is_never_served(page_cache, project, owner, outsider, factories):
    factories.make_dataset(project, name="mine")
    factories.make_dataset(projects_for(outsider).get(), name="theirs")
    assert names(client_for(owner)) == ["mine"]
    assert names(client_for(outsider)) == ["theirs"]
    assert names(client_for(owner)) == ["mine"]


def test_membership_changes_are_seen_at_once(page_cache, project, owner, factories):
    factories.make_dataset(project, name="shared")
    newcomer = factories.make_user("newcomer")
    client = client_for(newcomer)
    assert names(client) == []
    membership = factories.add_member(project, newcomer, "viewer")
    assert names(client) == ["shared"]
    membership.delete()
    assert names(client) == []

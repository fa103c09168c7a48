"""Shared pytest fixtures: users with roles in projects, API clients.

Factories are plain functions in ``tests/web/factories.py``; these fixtures wrap the common
cast: ``owner``, ``analyst``, ``viewer`` of ``project``, and an ``outsider`` with a project of
their own.
"""

import pytest


@pytest.fixture
def factories():
    from tests.web import factories as module

    return module


@pytest.fixture
def owner(db, factories):
    return factories.make_user("owner")


@pytest.fixture
def project(owner, factories):
    return factories.make_project(owner, name="DIT vs slurry")


@pytest.fixture
def analyst(project, factories):
    user = factories.make_user("analyst")
    factories.add_member(project, user, "analyst")
    return user


@pytest.fixture
def viewer(project, factories):
    user = factories.make_user("viewer")
    factories.add_member(project, user, "viewer")
    return user


@pytest.fixture
def outsider(db, factories):
    user = factories.make_user("outsider")
    factories.make_project(user, name="Someone else's project")
    return user


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_as(api_client):
    """``api_as(user)``: an APIClient authenticated as ``user``."""

    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login


@pytest.fixture
def client_as(client):
    """``client_as(user)``: the Django test client logged in as ``user``."""

    def login(user):
        client.force_login(user)
        return client

    return login


# --- object storage (CORRELI_STORAGE=s3) against a real S3 server --------------------------


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's standalone S3 server, a separate process on a free 127.0.0.1 port."""
    from tests.s3_store import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def object_store(moto_s3, settings, tmp_path):
    """Switch the platform to ``CORRELI_STORAGE=s3``: a fresh bucket on the moto server,
    reached through a :class:`~tests.s3_store.FlakyProxy` (``object_store.proxy``) so that a
    test can cut the store off. Cache and scratch live under ``tmp_path``."""
    import uuid
    from types import SimpleNamespace

    from config.settings.base import s3_storage_setting

    from tests.s3_store import FlakyProxy

    bucket = f"correli-{uuid.uuid4().hex[:12]}"
    client = moto_s3.client()
    client.create_bucket(Bucket=bucket)
    proxy = FlakyProxy(moto_s3.port)
    settings.CORRELI_STORAGE = "s3"
    settings.CORRELI_CACHE_DIR = tmp_path / "input-cache"
    settings.CORRELI_SCRATCH_DIR = tmp_path / "scratch"
    # a fresh media root too, so that "nothing landed under MEDIA_ROOT" cannot see files that
    # earlier tests of the same process left at the same result path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CORRELI_S3_MULTIPART_CHUNK_BYTES = 5 * 1024**2  # S3's smallest part
    settings.CORRELI_S3_TRANSFER_ATTEMPTS = 3
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage_setting(
            bucket=bucket,
            endpoint_url=proxy.endpoint,
            region="us-east-1",
            access_key="testing",
            secret_key="testing",
            max_attempts=2,
        ),
    }

    def keys(prefix: str = "") -> dict[str, int]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

    def read(key: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    yield SimpleNamespace(bucket=bucket, client=client, proxy=proxy, keys=keys, read=read)
    proxy.close()

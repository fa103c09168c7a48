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

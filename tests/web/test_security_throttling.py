"""Issue 18, defect 6: the token endpoint and the login form are rate-limited per client
address and per username (429 + Retry-After), lock out after repeated failures, and each
refusal leaves an audit entry."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from projects.models import AuditEvent

pytestmark = pytest.mark.django_db
TOKEN = "/api/v1/auth/token/"
LOGIN = "/accounts/login/"
PASSWORD = "correli-test-pw"  # tests.web.factories.PASSWORD


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login_address": "6/min", "login_username": "4/min"},
    }


@pytest.fixture
def no_lockout(settings):
    settings.AXES_ENABLED = False


def token_attempt(client, username, password="wrong", address="10.0.0.1"):
    return client.post(TOKEN, {"username": username, "password": password}, REMOTE_ADDR=address)


def refusals(reason):
    return AuditEvent.objects.filter(object_type="auth.login", changes__reason=reason)


def test_token_endpoint_limits_one_username_from_many_addresses(
    client, owner, low_rates, no_lockout
):
    for n in range(4):
        assert token_attempt(client, "owner", address=f"10.0.0.{n}").status_code == 400
    refused = token_attempt(client, "owner", password=PASSWORD, address="10.0.0.99")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refusals("rate limited").filter(username="owner").count() == 1
    # another username is not affected
    assert token_attempt(client, "someone", address="10.0.0.98").status_code == 400


def test_token_endpoint_limits_one_address_across_usernames(client, low_rates, no_lockout):
    for n in range(6):
        assert token_attempt(client, f"user{n}", address="10.9.9.9").status_code == 400
    refused = token_attempt(client, "user-next", address="10.9.9.9")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    event = refusals("rate limited").get()
    assert event.changes["address"] == "10.9.9.9" and event.changes["path"] == TOKEN
    assert token_attempt(client, "user-next", address="10.9.9.10").status_code == 400


def test_login_form_is_rate_limited_too(client, owner, low_rates, no_lockout):
    for _ in range(4):
        response = client.post(LOGIN, {"username": "owner", "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    refused = client.post(LOGIN, {"username": "owner", "password": PASSWORD})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert b"Too many login attempts" in refused.content
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_the_username_out_even_with_the_right_password(
    client, owner, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(2):
        assert token_attempt(client, "owner", address=f"10.1.0.{n}").status_code == 400
    locked = token_attempt(client, "owner", address="10.1.0.2")
    assert locked.status_code == 429
    right = token_attempt(client, "owner", password=PASSWORD, address="10.1.0.3")
    assert right.status_code == 429
    assert int(right["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "token" not in right.json()
    form = client.post(LOGIN, {"username": "owner", "password": PASSWORD}, REMOTE_ADDR="10.1.0.4")
    assert form.status_code == 429 and "_auth_user_id" not in client.session
    assert refusals("locked out").filter(username="owner").exists()
    assert AccessAttempt.objects.filter(username="owner").exists()


def test_repeated_failures_from_one_address_lock_that_address(client, owner, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(3):
        token_attempt(client, f"guess{n}", address="10.2.0.1")
    assert token_attempt(client, "owner", password=PASSWORD, address="10.2.0.1").status_code == 429
    ok = token_attempt(client, "owner", password=PASSWORD, address="10.2.0.2")
    assert ok.status_code == 200 and ok.json()["token"]


def test_a_successful_login_is_neither_throttled_nor_locked(client, owner):
    for _ in range(3):
        assert token_attempt(client, "owner", password=PASSWORD).status_code == 200
    assert not refusals("rate limited").exists() and not refusals("locked out").exists()

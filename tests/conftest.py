"""Suite-wide fixtures: an API client, the fake sf CLI for every worker, and ending stray
database sessions before teardown."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.support import fake_sf


@pytest.fixture(autouse=True)
def _fake_sf_cli(settings):
    """Workers authorise orgs with `sf org login sfdx-url`; here the fake sf answers."""
    settings.SFP_SF_CLI_PATH = fake_sf.command()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session", autouse=True)
def _end_stray_database_sessions(django_db_setup, django_db_blocker):
    """Threads of worker and WebSocket tests keep connections of their own; end them so the test
    database can be dropped at the end of the run."""
    yield
    from apps.environments import handoff

    handoff.stop_listener()  # the lock hand-off listener's connection, first
    if not connection.settings_dict["NAME"].startswith("test_"):
        return  # no test database was created (a run without database tests)
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

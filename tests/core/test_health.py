"""Health reports database, channel layer and task backend; ping answers pong."""

import json

import pytest

from tests.support.servers import clean_environment, running_server

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/health", "/sfp/api"])
def test_health_reports_every_dependency_up(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channelLayer", "taskBackend"}
    assert all(check["status"] == "up" for check in body["checks"].values())


def test_health_is_public_and_lists_latency(api_client):
    body = api_client.get("/health").json()
    assert body["checks"]["database"]["latencyMs"] >= 0


def test_ping_answers_pong(api_client):
    response = api_client.get("/sfp/api/ping")
    assert response.status_code == 200
    assert response.content == b"pong"
    assert response["Content-Type"].startswith("text/plain")


def test_health_is_503_naming_the_database_when_it_is_unreachable():
    """A real server process pointed at a closed port: the report names what failed."""
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
        DATABASE_URL="postgres://postgres@127.0.0.1:1/unreachable",
        DATABASE_CONNECT_TIMEOUT="2",
    )
    with running_server("serve", "--skip-bootstrap", env=environment) as server:
        status, headers, content = server.get("/health")
        api_status, _, api_content = server.get("/sfp/api")

    assert status == 503
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(content)
    assert body["statusCode"] == 503
    assert body["error"] == "Service Unavailable"
    assert "database" in body["message"]
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["channelLayer"]["status"] == "up"
    assert "postgres://" not in content.decode()
    assert api_status == 503
    assert json.loads(api_content)["checks"]["database"]["status"] == "down"

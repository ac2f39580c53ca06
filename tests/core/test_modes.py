"""The two modes: the embedded default boots from nothing; production refuses missing secrets."""

import json

import pytest

from tests.support.servers import clean_environment, manage, running_server


def test_embedded_default_boots_from_an_empty_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    environment = clean_environment(SFP_DATA_DIR=str(data_dir), SFP_ADMIN_EMAIL="ops@example.com")

    with running_server("serve", env=environment) as server:
        ping = server.get("/sfp/api/ping")
        health = server.get("/health")
        schema = server.get("/sfp/apidocs-json")
        admin_login = server.get("/admin/login/")
        missing = server.get("/sfp/api/nope")

    assert ping[0] == 200 and ping[2] == b"pong"
    health_body = json.loads(health[2])
    assert health[0] == 200, health_body
    assert health_body["mode"] == "embedded"
    assert schema[0] == 200 and json.loads(schema[2])["info"]["title"] == "sfp server"
    assert admin_login[0] == 200 and b"sfp server" in admin_login[2]
    assert missing[0] == 404
    assert json.loads(missing[2]) == {
        "statusCode": 404,
        "message": "Cannot GET /sfp/api/nope",
        "error": "Not Found",
    }

    assert (data_dir / "sfpserver.sqlite3").is_file()
    assert (data_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "encryption_key").stat().st_mode & 0o777 == 0o600
    output = server.read_output()
    assert "Generated an encryption key in" in output
    assert "Created owner ops@example.com of team default" in output
    assert "Generated password (shown only now): " in output

    # Structured access log: one JSON line per request with the documented fields.
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("event") == "request" and r["path"] == "/sfp/api/nope"]
    assert access, output
    assert access[0]["status"] == 404
    assert access[0]["method"] == "GET"
    assert access[0]["actor"] == "anonymous"
    assert len(access[0]["request_id"]) == 32
    assert access[0]["duration_ms"] >= 0

    # A second start reuses the database, the key and the administrator.
    secret_before = (data_dir / "secret_key").read_text()
    with running_server("serve", env=environment) as again:
        assert again.get("/sfp/api/ping")[0] == 200
    assert (data_dir / "secret_key").read_text() == secret_before
    assert "Generated an encryption key" not in again.read_output()
    assert "already exists" in again.read_output()
    assert "Generated password" not in again.read_output()


def test_production_refuses_to_start_naming_missing_secrets(tmp_path):
    environment = clean_environment(DATABASE_URL="postgres://postgres@127.0.0.1:5432/sfpserver")
    result = manage("check", env=environment)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "REDIS_URL" in result.stderr
    assert "SFP_ENCRYPTION_KEYS" in result.stderr


def test_production_rejects_a_database_that_is_not_postgresql():
    environment = clean_environment(
        DATABASE_URL="mysql://root@127.0.0.1/x",
        DJANGO_SECRET_KEY="k" * 50,
        REDIS_URL="redis://127.0.0.1:6379/0",
        SFP_ENCRYPTION_KEYS="dGVzdC1vbmx5LXZhdWx0LWtleS0zMi1ieXRlcy0hISE=",
    )
    result = manage("check", env=environment)
    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


@pytest.mark.parametrize("mode", ["staging", "prod"])
def test_unknown_mode_is_refused(mode):
    result = manage("check", env=clean_environment(SFP_MODE=mode))
    assert result.returncode != 0
    assert "SFP_MODE" in result.stderr


def test_embedded_default_runs_a_submitted_task_with_nothing_else_started(tmp_path):
    """`make run`'s server alone executes work: its in-process worker takes a noop to completed."""
    import time
    import urllib.request

    environment = clean_environment(
        SFP_DATA_DIR=str(tmp_path / "data"),
        SFP_ADMIN_EMAIL="ops@example.com",
        SFP_ADMIN_PASSWORD="embedded-owner-password-1",
    )

    def call(server, method, path, body=None, token=None):
        request = urllib.request.Request(
            server.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {token}"} if token else {}),
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read())

    with running_server("serve", env=environment) as server:
        login = call(server, "POST", "/sfp/api/auth/admin/login",
                     {"email": "ops@example.com", "password": "embedded-owner-password-1"})  # fmt: skip
        token = login["access_token"]
        submitted = call(server, "POST", "/sfp/api/tasks", {"type": "noop", "data": {}}, token)
        deadline = time.monotonic() + 30
        while True:
            status = call(
                server, "GET", f"/sfp/api/tasks/{submitted['operationId']}/status", None, token
            )
            if (
                status["status"] in ("completed", "failed", "cancelled")
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.1)
    assert status["status"] == "completed", status

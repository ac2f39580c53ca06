"""The production compose file gives the server every variable production mode requires."""

from pathlib import Path

import yaml
from django.conf import settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_provides_every_required_production_variable():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    server = compose["services"]["server"]
    assert set(settings.REQUIRED_IN_PRODUCTION) <= set(server["environment"])
    assert server["build"]["dockerfile"] == "deploy/Dockerfile"
    assert {"postgres", "redis", "caddy"} <= set(compose["services"])


def test_caddy_serves_a_maintenance_page_when_the_server_is_down():
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy server:8000" in caddyfile
    assert "handle_errors 502 503 504" in caddyfile
    assert (DEPLOY / "maintenance.html").is_file()

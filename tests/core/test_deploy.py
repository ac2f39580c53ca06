"""The production compose file gives the server and the workers of both pools every variable
production mode requires, and the worker image carries the tools a task runs."""

from pathlib import Path

import yaml
from django.conf import settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_provides_every_required_production_variable():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    server = compose["services"]["server"]
    assert set(settings.REQUIRED_IN_PRODUCTION) <= set(server["environment"])
    assert server["build"] == {
        "context": "..",
        "dockerfile": "deploy/Dockerfile",
        "target": "server",
    }
    assert {"postgres", "redis", "caddy"} <= set(compose["services"])


def test_compose_runs_a_worker_for_each_pool_with_the_worker_image():
    from apps.tasks.models import Pool

    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    workers = {name: s for name, s in compose["services"].items() if name.startswith("worker-")}
    pools = set()
    for worker in workers.values():
        assert worker["build"]["target"] == "worker"
        assert set(settings.REQUIRED_IN_PRODUCTION) <= set(worker["environment"])
        command = worker["command"]
        assert command[:3] == ["python", "manage.py", "runworker"]
        pools.add(command[command.index("--pool") + 1])
    assert pools == set(Pool.values)


def test_the_worker_image_installs_git_the_sf_cli_and_sfp():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    worker_stage = dockerfile.split("AS worker", 1)[1].split("FROM ", 1)[0]
    assert "git" in worker_stage
    assert '"@salesforce/cli@${SF_CLI_VERSION}"' in worker_stage
    assert '"@flxbl-io/sfp@${SFP_VERSION}"' in worker_stage
    assert "SFP_SF_CLI_PATH=sf" in worker_stage
    # sf 2.x needs Node >= 22.19 (Debian's nodejs is older): Node comes from the official image.
    assert "FROM node:22-" in dockerfile
    assert "COPY --from=node /usr/local/bin/node" in worker_stage
    assert "manage.py runworker --check-toolchain" in worker_stage  # the build fails without them


def test_caddy_upstreams_are_the_compose_services():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "{$SFP_SERVER_UPSTREAM:server:8000}" in caddyfile  # daphne: WebSockets
    assert "{$SFP_API_UPSTREAM:api:8001}" in caddyfile  # gunicorn: everything else
    api = compose["services"]["api"]
    assert api["environment"]["SFP_API_BIND"] == "0.0.0.0:8001"
    assert api["command"] == [
        "gunicorn", "--config", "deploy/gunicorn.conf.py", "sfpserver.wsgi:application"
    ]  # fmt: skip
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert set(settings.REQUIRED_IN_PRODUCTION) <= set(api["environment"])
    assert (DEPLOY / "maintenance.html").is_file()

"""deploy/: the compose file runs Postgres, Redis, three replicas and a proxy that routes the webhook paths to all
three, with settings that exist; the Dockerfile installs the packages the project ships and runs `livebot`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from bot.settings import Settings
from bot.slack_app import EVENTS_PATH

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SETTINGS = {name.upper() for name in Settings.model_fields}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def replicas(services: dict[str, Any]) -> dict[str, Any]:
    return {name: service for name, service in services.items() if "build" in service}


def test_compose_runs_postgres_redis_three_replicas_and_a_proxy() -> None:
    services = compose()["services"]
    bots = replicas(services)
    assert len(bots) == 3
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for bot in bots.values():
        assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert bot["command"] in (["telegram"], ["slack"])
        assert {dep: c["condition"] for dep, c in bot["depends_on"].items()} == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
        }
        env = bot["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:")  # replica mode, on the compose file's Redis
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert f"127.0.0.1:{env['METRICS_PORT']}/readyz" in " ".join(bot["healthcheck"]["test"])
        assert set(services["proxy"]["depends_on"]) == set(bots)


def test_every_setting_the_compose_file_uses_exists() -> None:
    for name, bot in replicas(compose()["services"]).items():
        unknown = set(bot["environment"]) - SETTINGS
        assert not unknown, f"{name} sets {unknown}, which bot/settings.py does not know"
        settings = Settings(  # the fixed values are valid settings (the ${...} ones come from deploy/.env)
            _env_file=None,  # type: ignore[call-arg]
            **{k.lower(): v for k, v in bot["environment"].items() if "${" not in str(v)},
        )
        assert settings.replicas
    example = (DEPLOY / "env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#"):
            name = line.split("=", 1)[0]
            assert name in SETTINGS or name == "POSTGRES_PASSWORD", name


def test_the_proxy_routes_the_webhook_paths_to_every_replica() -> None:
    services = compose()["services"]
    bots = replicas(services)
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["proxy"]["volumes"]
    upstreams = dict(re.findall(r"upstream (\w+) \{([^}]*)\}", nginx))
    routes = dict(re.findall(r"location = (\S+) \{\s*proxy_pass http://(\w+);", nginx))
    telegram_path = "/telegram"
    assert routes == {telegram_path: "telegram", EVENTS_PATH: "slack"}
    for upstream, port_setting in (("telegram", "TELEGRAM_WEBHOOK_PORT"), ("slack", "SLACK_PORT")):
        servers = re.findall(r"server ([\w-]+):(\d+)", upstreams[upstream])
        assert {host for host, _ in servers} == set(bots)
        assert {port for _, port in servers} == {bot["environment"][port_setting] for bot in bots.values()}


def test_the_dockerfile_installs_every_package_and_runs_livebot() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.MULTILINE))
    assert copied == set(packages)
    assert "RUN pip install ." in dockerfile
    assert 'ENTRYPOINT ["livebot"]' in dockerfile
    assert "FROM python:3.11" in dockerfile

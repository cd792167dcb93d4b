"""docker-compose.yml cannot run on CI (no Docker engine), so it is checked here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nudge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def known_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names |= set(alias.choices) if alias is not None else {f"NUDGE_{name.upper()}"}  # type: ignore[union-attr]
    return names


def test_services_images_and_healthchecks() -> None:
    """Kafka (official image, KRaft), PostgreSQL, a topic-init step and two health-checked
    workers that keep the record in PostgreSQL."""
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["topics"]["command"] == ["nudge", "topics", "create"]
    for name in ("worker-1", "worker-2"):
        worker = services[name]
        assert worker["command"] == ["nudge", "worker"]
        assert "/ready" in " ".join(worker["healthcheck"]["test"])
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert any(v.endswith(":/data") for v in worker["volumes"])
        assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert worker["environment"]["NUDGE_DATABASE_URL"].startswith("postgresql://")
    assert services["postgres"]["image"].startswith("postgres:")
    ports = {services[n]["ports"][0] for n in ("worker-1", "worker-2")}
    assert ports == {"6066:6066", "6067:6066"}


def test_worker_env_names_are_real_settings() -> None:
    """Every variable given to a worker is one Settings reads (no typo silently ignored)."""
    env = compose()["services"]["worker-1"]["environment"]
    unknown = set(env) - known_env_names()
    assert not unknown, f"docker-compose.yml sets unknown settings: {sorted(unknown)}"
    assert env["NUDGE_WEB_PORT"] == "6066" and env["KAFKA_URL"] == "kafka://kafka:9092"
    assert env["NUDGE_DATA_DIR"] == "/data"


def test_dockerfile_copies_every_package() -> None:
    """The image holds every top-level package pyproject installs."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = [
        p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"
    ]
    missing = [p for p in packages if f"COPY {p} {p}" not in dockerfile]
    assert not missing, f"Dockerfile does not copy {missing}"


def test_workers_bound_beyond_loopback_require_a_token() -> None:
    """The workers listen on 0.0.0.0 (other containers, the published ports), which the
    worker refuses without NUDGE_API_TOKEN: compose must demand one (``${VAR:?…}``), so a
    missing token stops ``docker compose up`` with a message instead of two workers that
    exit at start."""
    from streams.access import is_loopback

    for name in ("worker-1", "worker-2"):
        env = compose()["services"][name]["environment"]
        if not is_loopback(env.get("NUDGE_WEB_HOST", "127.0.0.1")):
            assert env.get("NUDGE_API_TOKEN", "").startswith("${NUDGE_API_TOKEN:?"), name

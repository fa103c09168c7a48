"""Static checks of docker-compose.yml and deploy/ (no Docker engine on CI machines).

Every service's command exists in the entrypoint, every environment variable the stack sets
is one the settings read, every mounted host path exists, paths agree between the compose
file, the Dockerfile, nginx and the settings.
"""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def with_defaults(text: str) -> str:
    """The compose file as docker-compose reads it with none of its variables set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


COMPOSE = yaml.safe_load(with_defaults((ROOT / "docker-compose.yml").read_text()))
SERVICES = COMPOSE["services"]
SETTINGS_SOURCE = "\n".join(
    p.read_text() for p in (ROOT / "platform" / "config" / "settings").glob("*.py")
)
# Variables consumed by other programs than Django's settings.
NON_SETTINGS_VARS = {"DJANGO_SETTINGS_MODULE", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_USER"}


def read_env_file(path: Path) -> dict:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_the_stack_has_the_required_services_with_healthchecks():
    assert {"web", "worker", "beat", "db", "redis", "nginx"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "healthcheck" in service, name
        assert service["healthcheck"]["test"], name
    assert SERVICES["db"]["image"].startswith("postgres:")
    assert SERVICES["redis"]["image"].startswith("redis:")


def test_web_and_worker_share_one_image_and_their_commands_exist():
    web, worker = SERVICES["web"], SERVICES["worker"]
    assert web["image"] == worker["image"]
    assert web["build"] == worker["build"]
    dockerfile = ROOT / web["build"]["context"] / web["build"]["dockerfile"]
    assert dockerfile.exists()
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    for service in (web, worker):
        (command,) = service["command"]
        assert re.search(rf"^\s*{command}\)", entrypoint, re.M), command
    assert "gunicorn config.asgi:application" in entrypoint
    assert "celery -A config.celery_app worker" in entrypoint
    assert "celery -A config.celery_app beat" in entrypoint
    assert SERVICES["beat"]["command"] == ["beat"] and SERVICES["beat"]["image"] == web["image"]
    assert (ROOT / "platform" / "config" / "asgi.py").exists()
    assert (ROOT / "platform" / "config" / "celery_app.py").exists()
    assert (ROOT / "deploy" / "entrypoint.sh").stat().st_mode & 0o111


def test_dockerfile_copies_and_runs_files_that_exist():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY\s+(?!--from)(\S+)\s", text, re.M):
        assert (ROOT / source).exists(), source
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in text
    assert "config.settings.production" in text
    assert (ROOT / "deploy" / "gunicorn.conf.py").exists()


def test_every_environment_variable_is_read_by_the_settings():
    env_example = read_env_file(ROOT / "deploy" / "env.example")
    names = set(env_example)
    for service in SERVICES.values():
        names |= set(service.get("environment", {}))
        for env_file in [service["env_file"]] if "env_file" in service else []:
            assert env_file == "deploy/.env"
    for name in names - NON_SETTINGS_VARS:
        assert re.search(rf"""env(_bool|_list)?\(\s*["']{name}["']""", SETTINGS_SOURCE), name
    # The production settings demand these; the example must provide them.
    for required in (
        "SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "REDIS_URL",
        "ALLOWED_HOSTS",
    ):
        assert required in env_example
    assert (
        env_example["DATABASE_URL"].startswith("postgres://")
        and "@db:" in env_example["DATABASE_URL"]
    )
    assert env_example["CELERY_BROKER_URL"].startswith("redis://redis:")
    assert env_example["REDIS_URL"].startswith("redis://redis:")


def test_mounts_exist_and_paths_agree():
    declared = set(COMPOSE["volumes"])
    mounts = {}
    for name, service in SERVICES.items():
        for spec in service.get("volumes", []):
            source, target = spec.split(":")[:2]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
            mounts.setdefault(name, {})[source] = target
    web_env = SERVICES["web"]["environment"]
    assert mounts["web"]["media"] == web_env["MEDIA_ROOT"]
    assert mounts["worker"]["media"] == SERVICES["worker"]["environment"]["MEDIA_ROOT"]
    assert mounts["web"]["static"] == web_env["STATIC_ROOT"]
    nginx_conf = (ROOT / "deploy" / "nginx" / "correli.conf").read_text()
    static_alias = re.search(r"alias\s+(\S+?)/?;", nginx_conf).group(1)
    assert mounts["nginx"]["static"] == static_alias
    assert mounts["nginx"]["./deploy/nginx/correli.conf"].startswith("/etc/nginx/conf.d/")
    assert "set $correli_web web:8000;" in nginx_conf
    # every location resolves the web container at request time (no upstream block to go stale)
    passes = re.findall(r"proxy_pass\s+(\S+);", nginx_conf)
    assert passes and set(passes) == {"http://$correli_web"}, passes
    assert "/media/" not in nginx_conf  # uploaded data only through permission-checked views
    # Named volumes for the database and media survive container rebuilds.
    assert mounts["db"]["pgdata"] == "/var/lib/postgresql/data"
    assert "ENV" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_web_healthcheck_path_is_served():
    test = " ".join(SERVICES["web"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000([^'\s]+)", test).group(1)
    from config.health import HEALTH_PATH

    assert path == HEALTH_PATH

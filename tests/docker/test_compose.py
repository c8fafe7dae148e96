"""``docker/compose.yaml``: the three-school demo is well formed and its init step really works.

No Docker engine runs here, so the file is read as Compose reads it (YAML,
``$$`` → ``$``), its wiring is checked, and each school's init script is run
with ``sh`` (``carnet`` recording its arguments, which the real parser then
reads) to show it yields a configuration the node accepts.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.cli import build_parser, cmd_init
from node.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
SCHOOLS = ("a", "b", "c")


def _interpolated(text: str) -> str:
    """Compose's interpolation for this file: defaults of ``${VAR:-default}``, ``$$`` → ``$``."""
    text = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)
    return text.replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_interpolated(COMPOSE.read_text(encoding="utf-8")))
    return loaded


def test_three_schools_each_with_its_own_database_volume_and_health_check(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["db"]["image"] == "postgres:15"
    assert "healthcheck" in services["db"]
    databases = set()
    for school in SCHOOLS:
        node, init = services[f"carnet-{school}"], services[f"carnet-{school}-init"]
        assert node["depends_on"] == {
            "db": {"condition": "service_healthy"},
            f"carnet-{school}-init": {"condition": "service_completed_successfully"},
        }
        assert init["depends_on"] == {"db": {"condition": "service_healthy"}}
        assert node["volumes"] == init["volumes"] == [f"carnet-{school}-data:/data"]
        assert f"carnet-{school}-data" in compose["volumes"]
        assert node["ports"][0].startswith("127.0.0.1:")  # the demo is not put on the network
        assert "/healthz" in " ".join(node["healthcheck"]["test"])
        url = init["environment"]["DATABASE"]
        assert url.startswith(f"postgresql://carnet_{school}:") and url.endswith(
            f"@db:5432/carnet_{school}"
        )
        databases.add(url)
        assert (
            init["environment"]["PUBLIC_URL"]
            == f"http://{school}.localhost:800{SCHOOLS.index(school) + 1}"
        )
    assert len(databases) == 3
    created = compose["configs"]["create-schools"]["content"]
    assert (
        "for school in a b c" in created
        and "CREATE DATABASE carnet_$school OWNER carnet_$school" in created
    )
    mount = services["db"]["configs"][0]
    assert mount["target"].startswith("/docker-entrypoint-initdb.d/")


def test_the_init_script_makes_a_valid_node_with_routes_to_the_other_schools(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    init = compose["services"]["carnet-b-init"]
    folder = tmp_path / "data"
    script = init["command"][0].replace("/data", str(folder))
    # `carnet` here records its arguments and writes carnet.toml as `carnet init` does
    # (the demo's PostgreSQL server is not here); the real parser reads them below
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "carnet").write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
        f"mkdir -p {folder}\n"
        f'test -f {folder}/carnet.toml || printf \'public_url = "%s"\\nbind = "0.0.0.0:8000"\\n\' '
        f'"$PUBLIC_URL" > {folder}/carnet.toml\n'
    )
    (bin_dir / "carnet").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **init["environment"]}
    for _ in range(2):  # a second `docker compose up` appends no second table
        done = subprocess.run(
            ["/bin/sh", "-ec", script], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text(encoding="utf-8").splitlines()
    args = build_parser().parse_args(argv)
    assert args.func is cmd_init and args.data == folder and args.school == "École B"
    assert args.database_url == init["environment"]["DATABASE"] and args.bind == "0.0.0.0:8000"
    assert args.admin_email == "direction@b.example"
    toml = (folder / "carnet.toml").read_text(encoding="utf-8")
    assert toml.count("[federation_connect]") == 1
    config = load_config({"data_dir": str(folder)}, environ={})
    assert config.public_url == "http://b.localhost:8002" and config.bind == "0.0.0.0:8000"
    assert config.federation_connect == {
        f"http://{s}.localhost:800{i}": f"http://carnet-{s}:8000" for i, s in enumerate(SCHOOLS, 1)
    }

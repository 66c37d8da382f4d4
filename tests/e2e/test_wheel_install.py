"""A wheel built from the repository, installed outside the checkout, serves `create_app()`:
its describe snapshots, contracts and permission sets are package data, and it carries no
sandbox org.

The fresh environment is a `venv` whose only view of the development environment is a `.pth`
line naming its site-packages (so the third-party dependencies are there, but the editable
installs of `ats_gateway` and `sandbox_org`, which are `.pth` hooks of that directory, are
not); the wheel is installed into it with `pip --no-deps`. `make`-free and offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

from ats_gateway.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent(
    """
    import importlib.util, json, sys
    import ats_gateway
    from ats_gateway import create_app
    from ats_gateway.extensions import services

    app = create_app({"redis_url": sys.argv[1]})
    found = services(app)
    http = app.test_client()
    schema = http.get("/v1/schemas/application")
    openapi = http.get("/v1/openapi.json")
    print(json.dumps({
        "package": ats_gateway.__file__,
        "schemas_dir": found.settings.schemas_dir,
        "contracts": sorted(found.metadata.contracts),
        "describe_source": found.metadata.entry("application").source,
        "schema_status": schema.status_code,
        "schema_title": schema.get_json().get("title"),
        "openapi_paths": len(openapi.get_json()["paths"]),
        "sandbox_org": importlib.util.find_spec("sandbox_org") is not None,
    }))
    """
)


PIP = [sys.executable, "-m", "pip"]

#: Not part of a source tree (an in-tree build would also leave build/ behind in the checkout).
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".ats-gateway", ".hypothesis"
)


def test_a_wheel_installed_outside_the_checkout_serves_create_app(tmp_path, redis_url):
    source = tmp_path / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=_NOT_SOURCE)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            *PIP,
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        check=True,
        timeout=240,
    )
    (wheel,) = wheels.glob("ats_gateway-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "dev-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [*PIP, "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        timeout=240,
    )

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATS_GATEWAY_")}
    env.pop("PYTHONPATH", None)
    probe = subprocess.run(
        [python, "-c", PROBE, redis_url],
        cwd=outside,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = json.loads(probe.stdout.strip().splitlines()[-1])

    assert found["package"].startswith(str(site)), found["package"]
    assert found["schemas_dir"].startswith(str(site))
    assert {"application", "job", "job_filters", "interview_feedback"} <= set(found["contracts"])
    assert found["describe_source"] == "snapshot"
    assert found["schema_status"] == 200
    assert found["openapi_paths"] > 5
    assert found["sandbox_org"] is False

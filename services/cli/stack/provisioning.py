"""Installing the backends this machine runs itself (scripts/provision-*.sh) into the tool cache."""

from __future__ import annotations

import os
import shutil
import subprocess

from services.cli.stack.config import SCRIPTS


def _script(name: str) -> str:
    out = subprocess.run(
        ["bash", str(SCRIPTS / name)], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def provision() -> dict[str, str]:
    """Make sure every backend this machine has to run itself is installed; return paths."""
    tools: dict[str, str] = {}
    # chromium: the console's browser tests; npm: Swagger UI's files (/api/docs)
    system = ("nginx", "chromium", "npm")
    if not os.environ.get("LOGSERVER_REDIS_URL") or not all(map(shutil.which, system)):
        _script("provision-system.sh")
    if not os.environ.get("LOGSERVER_MONGODB_URL") and not shutil.which("mongod"):
        tools["ferretdb"] = _script("provision-ferretdb.sh")
    if not os.environ.get("LOGSERVER_SQS_ENDPOINT_URL"):
        tools["elasticmq_lib"] = _script("provision-elasticmq.sh")
    return tools

"""docker/Dockerfile, .dockerignore, k8s/make.mk and the validation script."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import tomllib
from pathlib import Path

from .conftest import REPO

DOCKERFILE = REPO / "docker" / "Dockerfile"


def _stages(text: str) -> dict[str, tuple[str, list[str]]]:
    """stage name -> (base, lines); in file order (the last is the default)."""
    stages: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", line, re.IGNORECASE)
        if m:
            current = m.group(2) or f"stage{len(stages)}"
            stages[current] = (m.group(1), [])
        elif current and line.strip() and not line.lstrip().startswith("#"):
            stages[current][1].append(line)
    return stages


def test_dockerfile_is_multi_stage_python_311_slim():
    text = DOCKERFILE.read_text()
    m = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert m and m.group(1).startswith("python:3.11-slim"), "python:3.11-slim base"
    stages = _stages(text)
    assert list(stages)[:2] == ["swagger-ui", "builder"]
    for name, (base, _) in stages.items():
        # The console stage is nginx serving static files, swagger-ui only fetches
        # Swagger UI's files with npm; every other is Python.
        allowed = {"console": ("${NGINX_IMAGE}",), "swagger-ui": ("${NODE_IMAGE}",)}.get(
            name, ("${PYTHON_IMAGE}", *stages)
        )
        assert base in allowed, (name, base)
    m = re.search(r"^ARG NGINX_IMAGE=(\S+)$", text, re.MULTILINE)
    assert m and "nginx-unprivileged" in m.group(1), "the console runs as non-root nginx"


def test_dockerfile_final_image_is_non_root_without_compilers():
    text = DOCKERFILE.read_text()
    stages = _stages(text)
    names = list(stages)
    default = names[-1]
    # follow the default stage back to its external base
    chain = [default]
    while stages[chain[-1]][0] in stages:
        chain.append(stages[chain[-1]][0])
    assert "builder" not in chain
    lines = [line for s in chain for line in stages[s][1]]
    body = "\n".join(lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] == "10001"
    for tool in ("gcc", "build-essential", "g++", "make ", "apt-get install"):
        assert tool not in body, tool
    assert "COPY --from=builder /opt/venv /opt/venv" in body
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    assert re.fullmatch(r'CMD \["python", "-m", "services\.\w+"\]', cmd)
    assert "dev" in stages  # Tilt's target


def test_dockerfile_installs_the_lock_then_the_project_without_deps():
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install --no-deps -r", text)
    assert re.search(r"pip install --no-deps \.", text)


# Dev tooling: what the dev, devstack and bench extras bring, never in the image.
DEV_TOOLS = ("honcho", "pytest", "ruff", "locust", "playwright")
DEV_STACK_MODULES = ("services/cli/stack", "services/cli/devstack.py")  # a package, a module


def _lock_packages(path: Path) -> set[str]:
    return {
        line.split("==")[0].lower()
        for line in path.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    }


def test_image_installs_only_the_runtime_lock():
    """Every `pip install -r` and every lock copied in names the runtime lock, no extra."""
    builder = "\n".join(_stages(DOCKERFILE.read_text())["builder"][1])
    assert re.findall(r"pip install[^\n]*?\s-r\s+(\S+)", builder) == ["requirements.runtime.lock"]
    copied = re.findall(r"^COPY\s+(requirements\S*)", builder, re.MULTILINE)
    assert copied == ["requirements.runtime.lock"]
    assert not re.search(r"pip install[^\n]*\[", builder), "an extra is installed"
    ignore = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert "requirements.lock" in ignore  # the full lock is not even in the build context


def test_dev_tooling_is_an_extra_and_absent_from_the_runtime_lock():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[<>=\[ ]", dep)[0].lower() for dep in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert any(dep.startswith("honcho") for dep in extras["devstack"])
    runtime = _lock_packages(REPO / "requirements.runtime.lock")
    for tool in DEV_TOOLS:
        assert tool not in required, tool
        assert tool not in runtime, tool
    assert required <= runtime, required - runtime
    full = _lock_packages(REPO / "requirements.lock")  # what `make install` syncs
    assert set(DEV_TOOLS) <= full


def test_image_leaves_out_the_dev_stack_runner():
    """The wheel excludes it, the builder deletes the source copy after the console build."""
    wheel = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert set(DEV_STACK_MODULES) <= set(wheel["targets"]["wheel"]["exclude"])
    builder = _stages(DOCKERFILE.read_text())["builder"][1]
    steps = "\n".join(builder)
    console = steps.index("python -m services.cli.console")
    removal = re.search(r"rm\s+(?:-r\s+)?((?:services/\S+\s*)+)", steps)
    assert removal and removal.start() > console, "removed after the console is built"
    assert set(removal.group(1).split()) == set(DEV_STACK_MODULES)
    assert steps.index("compileall") > removal.start()  # no byte code left of them


def test_what_the_image_keeps_does_not_import_the_dev_stack_at_load_time():
    """Only function-level (lazy) imports of the dev stack remain in the image's code."""
    dev_modules = {m.removesuffix(".py").replace("/", ".") for m in DEV_STACK_MODULES}
    dev_modules |= {"honcho"}
    for path in (REPO / "services").rglob("*.py"):
        if str(path.relative_to(REPO)).startswith(DEV_STACK_MODULES):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not any(name == mod or name.startswith(mod + ".") for mod in dev_modules), (
                    f"{path.relative_to(REPO)} imports {name}"
                )


def test_console_stage_serves_the_built_files_as_non_root():
    stages = _stages(DOCKERFILE.read_text())
    names = list(stages)
    assert "console" in stages and names[-1] != "console"  # not the default target
    lines = stages["console"][1]
    assert "COPY --from=builder /src/console-dist /usr/share/nginx/html" in lines
    assert "COPY docker/console-headers.conf /etc/nginx/console-headers.conf" in lines
    assert [line for line in lines if line.startswith("USER ")] == ["USER 101:101"]
    builder = "\n".join(stages["builder"][1])
    assert "python -m services.cli.console /src/console-dist" in builder
    # The API reference (/api/docs) is built beside the console, with its headers.
    assert "python -m services.cli.apidocs /src/console-dist /src/swagger-ui-dist" in builder
    assert "COPY docker/apidocs-headers.conf /etc/nginx/apidocs-headers.conf" in lines
    assert "npm ci --no-audit --no-fund --ignore-scripts" in "\n".join(stages["swagger-ui"][1])
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    for kept in (
        "!docker/console-nginx.conf",
        "!docker/console-headers.conf",
        "!docker/apidocs-headers.conf",
        "!scripts/swagger-ui/package-lock.json",
    ):
        assert kept in ignore, kept
    assert "console" not in ignore


def test_dockerignore_keeps_the_context_small():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    entries = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    for needed in (".venv", ".data", ".git", "tests", "benchmarks", "**/__pycache__"):
        assert needed in entries, needed
    for kept in ("services", "pyproject.toml", "requirements.runtime.lock", "README.md"):
        assert kept not in entries, kept


def test_make_fragment_targets():
    text = (REPO / "k8s" / "make.mk").read_text()
    for target in ("up", "down", "k8s-render", "k8s-validate"):
        assert re.search(rf"^{target}:", text, re.MULTILINE), target
    assert "minikube start" in text and "tilt up" in text and "tilt down" in text
    assert "scripts/k8s-validate.sh" in text
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and line.strip():
            assert line.startswith("\t"), f"recipe line not indented with a tab: {line!r}"


def test_validate_script_is_executable_bash():
    script = REPO / "scripts" / "k8s-validate.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)

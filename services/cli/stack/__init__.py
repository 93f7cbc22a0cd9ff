"""The local stack: which processes make up logserver on one machine, and how to run them.

The same process list serves `make dev` (run in the foreground with honcho)
and `make test` (run in the background by :class:`ProcessGroup`, on free
ports, with logs in files). Backends are provisioned by `scripts/` into a
cache outside the repository.

Modules: ``config`` (ports, process specs, stack.json), ``provisioning`` (the
backends), ``build`` (configs, nginx templating, the process list),
``processes`` (readiness, the background process group). Not in the runtime
image: it needs a source checkout. Import from the package: it re-exports
their public names.
"""

from __future__ import annotations

from services.cli.stack.build import (
    ELASTICMQ_CONF,
    build_stack,
    gateway_proc,
)
from services.cli.stack.config import (
    CACHE,
    REPO,
    SCRIPTS,
    SERVICES,
    Ports,
    ProcSpec,
    StackConfig,
)
from services.cli.stack.processes import (
    ProcessGroup,
    probe_once,
    wait_ready,
)
from services.cli.stack.provisioning import (
    provision,
)

__all__ = [
    "CACHE",
    "ELASTICMQ_CONF",
    "REPO",
    "SCRIPTS",
    "SERVICES",
    "Ports",
    "ProcSpec",
    "ProcessGroup",
    "StackConfig",
    "build_stack",
    "gateway_proc",
    "probe_once",
    "provision",
    "wait_ready",
]

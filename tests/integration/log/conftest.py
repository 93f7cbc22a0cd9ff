"""The MongoDB query-plan checks need a real `mongod` (the stack then runs on it). Without
one they are not collected at all, rather than reported as skipped."""

from __future__ import annotations

import shutil

collect_ignore = [] if shutil.which("mongod") else ["test_mongodb_plans.py"]

"""Load tests: the load generators (locust files and asyncio scripts, each run as a
child process by the harness) and the harness itself (``benchmarks/harness``, run by
`make benchmark`). Results go to ``benchmarks/results/``."""

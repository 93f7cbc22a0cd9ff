"""The benchmark harness behind `make benchmark` (``python -m benchmarks.harness``).

It runs in the parent process and never imports locust (locust monkey-patches its
process with gevent); the load generators beside it in ``benchmarks/`` run as child
processes, each given a JSON config and writing a JSON summary:

    parameters.py   the sizes of a run (full, --quick, --smoke), paths, the log line
    stack.py        the stack under test: a private one or LOGSERVER_URL's; pids, storage
    sampling.py     RSS and queue depth once a second; CPU per request from /proc; /metrics
    runner.py       shared tenants, load generators in child processes, drain, preload
    scenarios/      one module per scenario: its load, its report lines, its targets
    tables.py       the report's row helpers the scenarios share
    report.py       machine, targets, the markdown report
    __main__.py     the command line: choose scenarios, run them, write the results
"""

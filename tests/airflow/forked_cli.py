"""The ``airflow`` CLI with its imports paid once: a fork server for the tests.

Starting ``airflow`` costs seconds of imports before a command does anything,
and the tests run it dozens of times with the same AIRFLOW_HOME. This script
imports the CLI once (and, before the first ``dags test`` or ``tasks test``,
what tasks load and the in-process Execution API app they run through, whose
routes take seconds), then reads one JSON list of requests a line on stdin
(``[{"argv": [...], "env": {...}, "stdout": path, "stderr": path, "timeout": s}]``),
forks a child for each, all at once, and runs ``airflow <argv>`` in each child
exactly as the ``airflow`` entry point does (``airflow.__main__.main``), with
the request's environment and its output in the two files. It answers
``{"returncodes": [n, ...]}`` when every child ended (negative: killed by that
signal; ``null``: killed after the request's ``timeout``). A line
``{"start": request}`` instead forks one child in a session of its own and
answers ``{"pid": n}`` at once, not waiting for it: a server (``api-server``,
``scheduler``, ``dag-processor``) that starts without paying the imports again.

Only the AIRFLOW_* settings Airflow reads on import are fixed; a request whose
environment changes them goes to a fork server started with them (the harness
in conftest.py does that). It ends when stdin closes.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import signal
import sys
import threading
import time
import traceback

# the answers go to the original stdout; whatever Airflow prints while it is
# imported here goes to stderr (the harness keeps it in a log file)
_ANSWERS = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def _import_the_cli():
    """``airflow.__main__`` and what nearly every command imports next."""
    import airflow.__main__ as entry_point
    import airflow.cli.commands.dag_command  # noqa: F401
    import airflow.cli.commands.task_command  # noqa: F401
    import airflow.models.dagbag  # noqa: F401
    import airflow.sdk  # noqa: F401

    import crm2erp.orchestration.tasks  # noqa: F401  # what every DAG file's task runs

    return entry_point


def _import_what_tasks_load() -> None:
    """What a task of a flow loads when it runs, paid here once instead of in every
    child: the connectors, batch stages and run hooks registered by entry point
    (the registry keeps what it read, and a child inherits it), and Great
    Expectations (seconds of imports), which the quality stage of a flow with rules
    imports. Importing changes nothing a command does: the stage still decides
    whether it runs."""
    from crm2erp import registry

    for group in (registry.CONNECTORS, registry.STAGES, registry.HOOKS):
        registry.load_all(group)
    import crm2erp.quality.gx.suite  # noqa: F401


#: the commands that run tasks in-process, through the Execution API app
_RUN_TASKS = (["dags", "test"], ["tasks", "test"])


@functools.cache
def _warm_for_tasks() -> None:
    """Before the first command that runs tasks (a server that only migrates,
    lists or triggers pays nothing): what tasks load, the Execution API app."""
    _import_what_tasks_load()
    _warm_the_execution_api()


def _warm_the_execution_api() -> None:
    """Build, once here (before the first command that runs tasks), the Execution API
    app that ``dags test`` and ``tasks test`` run their tasks through in-process: its
    versioned routes (Cadwyn) are otherwise generated at the first request of every
    such command, seconds each time. Only the app object is made: no thread, no
    database connection (the children start their own event loop and connections)."""
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    app = in_process_api_server().app
    initialize = getattr(app, "_cadwyn_initialize", None)
    if initialize is None:   # another Airflow/Cadwyn: each command builds its routes
        print("forked_cli: the Execution API app has no _cadwyn_initialize; not warmed",
              file=sys.stderr)
        return
    initialize()


def _child(entry_point, request: dict) -> int:
    os.environ.clear()
    os.environ.update(request["env"])
    opened: dict[str, int] = {}   # stdout and stderr may be one file
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        if path not in opened:
            opened[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(opened[path], fd)
    for target in opened.values():
        os.close(target)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.argv = ["airflow", *request["argv"]]
    try:
        entry_point.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    return code


def _answer(message: dict) -> None:
    _ANSWERS.write(json.dumps(message) + "\n")
    _ANSWERS.flush()


def serve() -> None:
    entry_point = _import_the_cli()
    sys.stdout.flush()
    _answer({"ready": True})
    # the processes of {"start": ...} requests, collected as soon as they end (no
    # zombie for the harness to wait on; their CPU time counted as this process's)
    signal.signal(signal.SIGCHLD, lambda *_: _reap(_DETACHED))
    for line in sys.stdin:
        requests = json.loads(line)
        if isinstance(requests, dict):   # {"start": request}: a process left running
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            try:
                pid = _start(entry_point, requests["start"], session=True)
                _DETACHED.add(pid)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            _answer({"pid": pid})
            continue
        if any(request["argv"][:2] in _RUN_TASKS for request in requests):
            _warm_for_tasks()
        started = time.monotonic()
        pids = [_start(entry_point, request) for request in requests]
        _answer({"returncodes": [_wait(pid, started + request["timeout"])
                                 for pid, request in zip(pids, requests, strict=True)]})
    # stdin closed: every child was waited for (a started one: stopped by the harness,
    # given a moment to end), and nothing here needs cleaning up; the interpreter's
    # shutdown of what the warm-up built takes seconds
    deadline = time.monotonic() + 10
    while _DETACHED and time.monotonic() < deadline:
        _reap(_DETACHED)
        time.sleep(0.05)
    sys.stderr.flush()
    os._exit(0)


#: the running processes of ``{"start": ...}`` requests
_DETACHED: set[int] = set()


def _reap(detached: set[int]) -> None:
    """Collect the ended processes of ``{"start": ...}`` requests (no zombies)."""
    for pid in list(detached):
        try:
            done = os.waitpid(pid, os.WNOHANG)[0]
        except ChildProcessError:
            done = pid
        if done:
            detached.discard(pid)


def _start(entry_point, request: dict, session: bool = False) -> int:
    """Fork the child that runs ``request``; its process id. With ``session``, the
    child leads a session of its own (a long-running server, like one started with
    ``Popen(start_new_session=True)``)."""
    pid = os.fork()
    if pid == 0:   # the child ends as the interpreter ends a process: the threading
        code = 1   # exit hooks (a process pool's shutdown), the atexit handlers
        try:   # the child's signals as a new process's (not this server's handler)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            if session:
                os.setsid()
                _ANSWERS.close()   # the harness's pipe: only the fork server answers
            code = _child(entry_point, request)
            threading._shutdown()
            atexit._run_exitfuncs()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def _wait(pid: int, deadline: float) -> int | None:
    """The child's exit code (negative: the signal that ended it); ``None`` when it
    ran past ``deadline`` (``time.monotonic()``) and was killed."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


if __name__ == "__main__":
    serve()

"""``crm2erp`` runs forked from a warm interpreter, for tests that kill the process.

A fresh ``python -m crm2erp sync run`` spends most of its first second importing
the engine, the store, the connectors and their libraries. :class:`ForkedCli`
starts one interpreter that imports them once (this file, run as a script) and
forks a child for each command: every run is still a process of its own, with its
own pid, environment, working folder and standard streams, that can be sent
SIGKILL mid-run; only the imports are shared, as the parent had them before
the fork (the parent never runs a command, opens a connection or starts a thread,
so the child inherits no state of an earlier run).

Protocol over a ``SOCK_SEQPACKET`` socket pair (one message per datagram):
``{"argv", "env", "cwd"}`` with the write end of the child's stderr pipe passed
as a file descriptor, answered ``{"pid"}``; ``{"wait": pid}`` answered
``{"returncode"}`` (negative: the signal that ended it, as :mod:`subprocess`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

# what `crm2erp sync run` imports (python -X importtime): imported once, before any fork
PRELOAD = ("crm2erp.cli.app", "crm2erp.cli.sync", "crm2erp.cli.status", "crm2erp.engine",
           "crm2erp.engine.runner", "crm2erp.store", "crm2erp.store.migrate",
           "crm2erp.mapping.compiler", "crm2erp.mapping.transforms", "crm2erp.connectors.sql",
           "crm2erp.quality.gx.stage", "crm2erp.quality.dedupe.stage", "crm2erp.registry",
           "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql.psycopg",
           "psycopg", "alembic.runtime.migration")


class ForkedCli:
    """The test's handle on the warm interpreter: :meth:`start` a command, read its
    stderr from the returned pipe, kill it by pid, :meth:`wait` for its exit code."""

    def __init__(self, env: dict[str, str]):
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._server = subprocess.Popen(
            [sys.executable, __file__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, env=env)
        theirs.close()

    def _ask(self, message: dict, fds: list[int] = ()) -> dict:
        socket.send_fds(self._sock, [json.dumps(message).encode()], list(fds))
        answer = self._sock.recv(65536)
        assert answer, f"the warm interpreter ended (exit {self._server.wait()})"
        return json.loads(answer)

    def start(self, argv: list[str], env: dict[str, str], cwd: str):
        """Fork ``crm2erp ARGV``: its pid and a text stream of its stderr (stdout and
        stdin are /dev/null)."""
        read, write = os.pipe()
        try:
            pid = self._ask({"argv": argv, "env": env, "cwd": cwd}, [write])["pid"]
        finally:
            os.close(write)
        return pid, os.fdopen(read, "r")

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["returncode"]

    def close(self) -> None:
        """End the warm interpreter: it holds nothing to save (each child it forked
        was waited for), so it is killed rather than left to tear its imports down."""
        self._sock.close()
        self._server.kill()
        self._server.wait()


def _child(request: dict, stderr_fd: int) -> None:
    """In the forked child: become ``crm2erp ARGV`` and exit with its code."""
    code = 70
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(stderr_fd, 2)
        for fd in (null, stderr_fd):
            os.close(fd)
        sys.stdin = open(0, closefd=False)   # noqa: SIM115 - the child's own streams
        sys.stdout = open(1, "w", closefd=False)   # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)   # noqa: SIM115
        sys.argv = ["crm2erp", *request["argv"]]
        from crm2erp.cli.app import main

        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the child's stderr, exit 70
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110
                pass
        os._exit(code)


def _serve(fd: int) -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    sock = socket.socket(fileno=fd)
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, 65536, 1)
        except ConnectionResetError:
            return
        if not message:
            return
        request = json.loads(message)
        if "wait" in request:
            _pid, status = os.waitpid(request["wait"], 0)
            sock.send(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
            continue
        (stderr_fd,) = fds
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(request, stderr_fd)
        os.close(stderr_fd)
        sock.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    _serve(int(sys.argv[1]))

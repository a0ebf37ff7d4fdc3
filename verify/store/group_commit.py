"""Group commit for SQLite: one writer process commits the write batches of every worker.

With `synchronous=FULL` each commit syncs SQLite's log (0.3 to 1.1 ms here), and gunicorn's
workers also queue for the database's write lock, whose busy handler sleeps in steps of 1 ms
or more. A single writer removes both: workers send their batches over a Unix socket; the
writer takes every batch that is waiting, runs them in one transaction with a savepoint
each (one batch's failure undoes only that batch), commits once (one sync for the group),
and only then answers. Nothing is acknowledged before its COMMIT returned, so a process
killed after an `ok` cannot lose that write.

The two ends are this project's own processes on one host, behind a socket in a private
(0700) directory: batches travel as pickled plain values, each frame prefixed by its length.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import selectors
import socket
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify.children import Stop, keep_running, stop_event, stop_on_signals
from verify.store.database import SQLITE_BUSY_TIMEOUT_MS, _sqlite_pragmas
from verify.store.driver import UniqueViolation, WriterUnreachable

log = logging.getLogger(__name__)

SOCKET_ENV = "VERIFY_SQLITE_WRITER_SOCKET"  # set by `verify serve` for its workers
GROUP_LIMIT = 256  # batches in one transaction: bounds the time the write lock is held
# A client waits at most this long for its answer: the writer may itself wait up to SQLite's
# busy timeout for another process's write lock (a migration, a revision drain), then commit.
ANSWER_TIMEOUT = SQLITE_BUSY_TIMEOUT_MS / 1000 + 5
UNREACHABLE = "the writer is not reachable"
# SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ms and more between its tries for a lock
# another process holds (the revision drain, a CLI command): a lock held 20 ms kept the writer,
# and every worker's request behind it, waiting about 33 ms, and p99 under a campaign went from
# 29 to 140 ms. The writer tries again this often instead (SQLite's handler is off for it).
LOCK_POLL_SECONDS = 0.0005
_LENGTH = struct.Struct("!I")
# What one recv asks for: under the allocator's 128 KiB mmap threshold (a 1 MiB buffer cost an
# mmap, an mremap and a munmap per request, 8% of the writer's time); a larger frame arrives
# over several reads.
READ_SIZE = 64 * 1024

Batch = Sequence[tuple[str, Sequence[Any]]]


def _frame(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


def connect_database(path: str, synchronous: str) -> sqlite3.Connection:
    """The writer's connection, with the pragmas of every other (store/database.py); transactions explicit."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    _sqlite_pragmas(synchronous)(connection, None)
    connection.execute("PRAGMA busy_timeout=0")  # the writer waits for the lock itself (_begin)
    return connection


def _begin(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried every LOCK_POLL_SECONDS while another process holds the write lock,
    for as long as SQLite's busy timeout would have."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(LOCK_POLL_SECONDS)


def listen(path: str) -> socket.socket:
    """The writer's listening socket. Bound before the writer (and the workers) start, so that
    connections made while a writer restarts wait in its backlog instead of failing."""
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1024)
    return listener


# Answers: ("ok",), ("unique", text), ("error", sqlite3 exception class name, text).
def _failure(error: sqlite3.Error) -> tuple:
    if isinstance(error, sqlite3.IntegrityError):
        return ("unique", str(error))
    return ("error", type(error).__name__, str(error))


def run_group(connection: sqlite3.Connection, batches: Sequence[Batch]) -> list[tuple]:
    """Run `batches` in one transaction, a savepoint each; their answers once COMMIT returned.

    A batch alone needs no savepoint (they cost about 15% of a one-row write): its failure
    rolls back the transaction, which holds nothing else.
    """
    isolated = len(batches) > 1
    answers: list[tuple] = []
    try:
        _begin(connection)
        for batch in batches:
            if isolated:
                connection.execute("SAVEPOINT request")
            try:
                for sql, rows in batch:
                    connection.executemany(sql, rows)
            except sqlite3.Error as error:
                if not isolated:
                    connection.execute("ROLLBACK")
                    return [_failure(error)]
                connection.execute("ROLLBACK TO request")
                answers.append(_failure(error))
            else:
                answers.append(("ok",))
            if isolated:
                connection.execute("RELEASE request")
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        # The group as a whole failed (the lock not had in time, the disk): nothing of it is kept.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        log.warning("a group of %d writes failed: %s", len(batches), error)
        return [("error", type(error).__name__, str(error))] * len(batches)
    return answers


@dataclass
class _Peer:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)


def serve(listener: socket.socket, path: str, synchronous: str, *, stop: Stop, parent_pid: int | None = None) -> None:
    """The writer loop: read every waiting batch, commit them as groups, answer; until `stop`
    is set or the parent process is gone."""
    connection = connect_database(path, synchronous)
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ)
    waiting: list[tuple[_Peer, Batch]] = []
    try:
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                return
            # Every batch that arrived while the last group committed is ready now: one group.
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is listener:
                    _accept(listener, selector)
                else:
                    _read(key.data, selector, waiting)
            while waiting:
                group, waiting = waiting[:GROUP_LIMIT], waiting[GROUP_LIMIT:]
                answers = run_group(connection, [batch for _, batch in group])
                for (peer, _), answer in zip(group, answers):
                    _answer(peer, answer, selector)
    finally:
        for key in list(selector.get_map().values()):
            if key.fileobj is not listener:
                key.fileobj.close()
        selector.close()
        connection.close()


def _accept(listener: socket.socket, selector: selectors.BaseSelector) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, _Peer(sock))


def _read(peer: _Peer, selector: selectors.BaseSelector, waiting: list) -> None:
    try:
        data = peer.sock.recv(READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if not data:  # the worker went away (exited, killed, or dropped a connection it gave up on)
        selector.unregister(peer.sock)
        peer.sock.close()
        return
    peer.buffer += data
    while len(peer.buffer) >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(peer.buffer)
        if len(peer.buffer) < _LENGTH.size + length:
            break
        payload = bytes(peer.buffer[_LENGTH.size:_LENGTH.size + length])
        del peer.buffer[:_LENGTH.size + length]
        waiting.append((peer, pickle.loads(payload)))


def _answer(peer: _Peer, answer: tuple, selector: selectors.BaseSelector) -> None:
    # One small answer per request, and a worker has one request in flight: it fits the
    # socket's buffer, so a send on the non-blocking socket does not come up short.
    try:
        peer.sock.send(_frame(answer))
    except OSError:
        if peer.sock.fileno() >= 0:
            selector.unregister(peer.sock)
            peer.sock.close()


class Client:
    """A worker's end: `write(batch)` returns once the writer committed it.

    One connection per process (a forked child makes its own), made on first use. A request
    is never sent twice: if the writer dies with it, the caller gets an error (503 at the
    API) and its client retries under its Idempotency-Key. If no writer can be reached before
    the request is sent (`WriterUnreachable`), the caller may commit the batch itself.
    """

    def __init__(self, path: str, *, timeout: float = ANSWER_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def write(self, batch: Batch) -> None:
        with self._lock:
            answer = self._exchange(_frame([(sql, list(rows)) for sql, rows in batch]))
        if answer[0] == "ok":
            return
        if answer[0] == "unique":
            raise UniqueViolation("a concurrent change collided with this one; retry")
        kind = getattr(sqlite3, answer[1], None)
        raise (kind if isinstance(kind, type) and issubclass(kind, sqlite3.Error) else sqlite3.OperationalError)(answer[2])

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _exchange(self, request: bytes) -> tuple:
        try:
            sock = self._connected()
            sock.sendall(request)
        except OSError:  # no whole frame left this process, and the writer acts on whole frames only
            self._drop()
            raise WriterUnreachable(UNREACHABLE) from None
        try:
            header = self._receive(sock, _LENGTH.size)
            return pickle.loads(self._receive(sock, _LENGTH.unpack(header)[0]))
        except OSError:
            self._drop()
            raise sqlite3.OperationalError(UNREACHABLE) from None

    def _connected(self) -> socket.socket:
        if self._sock is not None and self._pid == os.getpid() and not self._closed_by_writer(self._sock):
            return self._sock
        self._drop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self._sock, self._pid = sock, os.getpid()
        return sock

    @staticmethod
    def _closed_by_writer(sock: socket.socket) -> bool:
        """A restarted writer closed this connection: reconnect before sending, never after."""
        try:
            # select first: a socket with a timeout waits for data even when told not to.
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    @staticmethod
    def _receive(sock: socket.socket, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionResetError("the writer closed the connection")
            data += chunk
        return bytes(data)

    def _drop(self) -> None:
        if self._sock is not None:
            if self._pid == os.getpid():
                self._sock.close()
            self._sock = None


def sqlite_path(database_url: str) -> str | None:
    """The database file of an SQLite URL; None for other databases and in-memory ones."""
    import sqlalchemy as sa

    from verify.store.database import normalise_url

    url = sa.engine.make_url(normalise_url(database_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database


def supervise(listener: socket.socket, path: str, synchronous: str, *, parent_pid: int) -> None:
    """Keep one writer running until told to stop or the parent (gunicorn's arbiter) is gone.

    The writer runs in a child of this process, restarted at once if it dies: a crashed
    writer costs the requests in flight (answered 503, retried by their clients), not the
    service. The listening socket stays open here, so nothing queued on it is lost.
    """
    keep_running(lambda supervisor: serve(listener, path, synchronous, stop=stop_event(), parent_pid=supervisor),
                 what="SQLite writer", parent_pid=parent_pid, log=log)


def private_socket_path() -> str:
    """A socket path in a fresh directory only this user can enter."""
    return str(Path(tempfile.mkdtemp(prefix="verify-writer-")) / "writer.sock")


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m verify.store.group_commit DATABASE_FILE SOCKET [full|normal]`: one writer in
    the foreground until SIGTERM (the tests and bench/group_commit_bench.py run it so)."""
    import sys

    database, path, *rest = argv if argv is not None else sys.argv[1:]
    serve(listen(path), database, rest[0] if rest else "full", stop=stop_on_signals())


if __name__ == "__main__":
    main()

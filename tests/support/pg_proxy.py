"""A loopback TCP proxy in front of PostgreSQL that counts the round trips its clients make.

A round trip is a message after which the client waits for the server: a Sync (`S`, the end
of an extended-protocol exchange, one per pipeline sync), a simple Query (`Q`, which psycopg
uses for a statement without parameters and for BEGIN and COMMIT), a FunctionCall (`F`), or a
Flush (`H`, which psycopg sends when it needs results in the middle of a pipeline) unless it
directly follows one of those: psycopg ends a pipeline with Sync and Flush together, one wait.
Counting these messages, rather than turns seen on the wire, does not depend on how TCP
happens to split or join the bytes. Messages are framed as the protocol defines them
(https://www.postgresql.org/docs/current/protocol-message-formats.html): one type byte and a
four-byte length, except the first message of a connection, which has no type byte.
SSLRequest and GSSENCRequest are refused with `N`, so a client with sslmode=prefer goes on in
clear text; connect with sslmode=disable to skip that exchange.
"""

from __future__ import annotations

import socket
import struct
import threading

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
WAITS_FOR_SERVER = {b"S": "syncs", b"Q": "queries", b"H": "flushes", b"F": "function_calls"}
FLUSH = b"H"


class PostgresProxy:
    """Forward 127.0.0.1:`port` to a PostgreSQL server, counting what clients wait for."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # so the accept loop sees stop() without a wake-up trick
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._counts = dict.fromkeys(WAITS_FOR_SERVER.values(), 0)

    # -- counters ------------------------------------------------------------------------

    @property
    def syncs(self) -> int:
        return self._counts["syncs"]

    @property
    def queries(self) -> int:
        return self._counts["queries"]

    @property
    def flushes(self) -> int:
        return self._counts["flushes"]

    @property
    def round_trips(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)

    def _count(self, message_type: bytes, *, previous: bytes) -> None:
        counter = WAITS_FOR_SERVER.get(message_type)
        if message_type == FLUSH and previous in WAITS_FOR_SERVER:
            return  # the client already waits for the answer to the message before
        if counter:
            with self._lock:
                self._counts[counter] += 1

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> "PostgresProxy":
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its peer
        for thread in list(self._threads):
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()
        self._listener.close()

    def __enter__(self) -> "PostgresProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(self.target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._client_to_server, client, server)
            self._spawn(self._server_to_client, server, client)

    # -- pumps ---------------------------------------------------------------------------

    def _server_to_client(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := server.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _close_quietly(client)

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            if not self._forward_startup(client, server):
                return
            buffer, previous = b"", b""
            while chunk := client.recv(65536):
                buffer, previous = self._count_complete_messages(buffer + chunk, previous=previous)
                server.sendall(chunk)
        except OSError:
            pass
        finally:
            _close_quietly(server)

    def _forward_startup(self, client: socket.socket, server: socket.socket) -> bool:
        """Refuse encryption requests, then forward the startup (or cancel) packet."""
        while True:
            header = _read_exactly(client, 8)
            if header is None:
                return False
            length, code = struct.unpack("!ii", header)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client.sendall(b"N")
                continue
            rest = _read_exactly(client, length - 8)
            if rest is None:
                return False
            server.sendall(header + rest)
            return True

    def _count_complete_messages(self, buffer: bytes, *, previous: bytes) -> tuple[bytes, bytes]:
        """Count every whole message in `buffer`; return the incomplete tail and the last type."""
        offset = 0
        while len(buffer) - offset >= 5:
            (length,) = struct.unpack_from("!i", buffer, offset + 1)
            if len(buffer) - offset < 1 + length:
                break
            message_type = buffer[offset:offset + 1]
            self._count(message_type, previous=previous)
            previous = message_type
            offset += 1 + length
        return buffer[offset:], previous


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass

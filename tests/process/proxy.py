"""A TCP proxy between one scheduler and PostgreSQL that a test can cut, in one thread.

The shared PostgreSQL server is never stopped (other test runs use it): a scheduler is cut
off by its own proxy instead. Two kinds of cut:

- `freeze`: nothing is forwarded either way and new connections are held, as in a network
  partition. The connections stay open, so a transaction in flight keeps its locks and
  carries on, and may commit, when the cut ends (the case fencing must handle).
- `drop`: every connection is reset and new ones are refused until the cut ends, as when a
  server restarts or a firewall rejects.
"""

from __future__ import annotations

import queue
import selectors
import socket
import struct
import threading


class _Pair:
    """A client connection and its upstream connection, with what each side still has to send."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.outgoing = {client: bytearray(), upstream: bytearray()}

    def peer(self, sock: socket.socket) -> socket.socket:
        return self.upstream if sock is self.client else self.client


class Proxy:
    def __init__(self, target: tuple[str, int], *, name: str = "proxy") -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.mode = "open"  # open | freeze | drop
        self.connections = 0  # accepted in all, for the report
        self._selector = selectors.DefaultSelector()
        self._pairs: dict[socket.socket, _Pair] = {}
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    # The test's side ------------------------------------------------------------------

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def freeze(self) -> None:
        self._command("freeze")

    def drop(self) -> None:
        self._command("drop")

    def resume(self) -> None:
        self._command("open")

    def close(self) -> None:
        self._command("close")
        self._thread.join(5)

    def _command(self, mode: str) -> None:
        done = threading.Event()
        self._commands.put((mode, done))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise RuntimeError(f"the proxy on port {self.port} did not take the command {mode!r}")

    # The proxy's thread -----------------------------------------------------------------

    def _serve(self) -> None:
        while self._running:
            for key, events in self._selector.select(0.5):
                sock = key.fileobj
                if sock is self.listener:
                    self._accept()
                elif sock is self._wake_r:
                    self._take_commands()
                elif sock in self._pairs and self.mode == "open":  # a freeze taken in this same batch
                    self._transfer(sock, events)
        for pair in self._all_pairs():
            self._close(pair)
        self._selector.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _take_commands(self) -> None:
        try:
            self._wake_r.recv(4096)
        except BlockingIOError:
            pass
        while not self._commands.empty():
            mode, done = self._commands.get()
            if mode == "close":
                self._running = False
            else:
                self.mode = mode
                if mode == "drop":
                    for pair in self._all_pairs():
                        self._close(pair, reset=True)
                for sock in self._pairs:
                    self._watch(sock)
            done.set()

    def _all_pairs(self) -> list[_Pair]:
        return list({id(pair): pair for pair in self._pairs.values()}.values())

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        self.connections += 1
        if self.mode == "drop":
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = _Pair(client, upstream)
        self._pairs[client] = self._pairs[upstream] = pair
        self._watch(client)
        self._watch(upstream)

    def _watch(self, sock: socket.socket) -> None:
        """Register what `sock` waits for now: nothing while frozen (the bytes wait in the kernel)."""
        pair = self._pairs[sock]
        events = 0
        if self.mode == "open":
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if pair.outgoing[sock] else 0)
        registered = sock in self._selector.get_map()
        if events and registered:
            self._selector.modify(sock, events)
        elif events:
            self._selector.register(sock, events)
        elif registered:
            self._selector.unregister(sock)

    def _transfer(self, sock: socket.socket, events: int) -> None:
        pair = self._pairs[sock]
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._close(pair)
                return
            if data:
                peer = pair.peer(sock)
                pair.outgoing[peer] += data
                self._flush(pair, peer)
        if events & selectors.EVENT_WRITE and sock in self._pairs:
            self._flush(pair, sock)

    def _flush(self, pair: _Pair, sock: socket.socket) -> None:
        buffer = pair.outgoing[sock]
        try:
            sent = sock.send(buffer) if buffer else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(pair)
            return
        del buffer[:sent]
        self._watch(sock)

    def _close(self, pair: _Pair, *, reset: bool = False) -> None:
        if pair.client not in self._pairs:
            return  # closed already
        for sock in (pair.client, pair.upstream):
            self._pairs.pop(sock, None)
            if sock in self._selector.get_map():
                self._selector.unregister(sock)
            if reset:
                _reset(sock)
            else:
                sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a broken network path looks to both ends."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()

"""A real S3 server for the object-storage tests, and a TCP proxy that can cut it off.

:class:`MotoServer` runs moto's standalone S3 server (``python -m moto.server``, the S3 HTTP
protocol with multipart uploads and ranged GETs) as a separate process on a free 127.0.0.1
port. :class:`FlakyProxy` forwards a port to it and, on demand, drops every connection
(``cut()``), refuses new ones until ``restore()``, or cuts once after a number of bytes went
up or came down (``cut_after()``: a store lost in the middle of an upload or a download).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, log_path: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        log = open(self.log_path, "w")  # noqa: SIM115 - the process owns it
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited:\n{self.log_path.read_text()}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self, endpoint: str | None = None):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


class FlakyProxy:
    """``127.0.0.1:port`` → ``target_port``, with faults on demand."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._down = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._cut_after: int | None = None
        self._cut_upstream = True
        self._restore_after_s: float | None = None
        self._sent = 0
        self.cuts = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    # faults
    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self._down.set()
        self._drop_all()

    def restore(self) -> None:
        self._down.clear()

    def cut_after(
        self, nbytes: int, *, restore_after_s: float | None = 0.5, upstream: bool = True
    ) -> None:
        """Cut once ``nbytes`` more bytes went to the store (``upstream``, an upload) or came
        from it (a download); come back ``restore_after_s`` later (never: None)."""
        with self._lock:
            self._sent = 0
            self._cut_after = nbytes
            self._cut_upstream = upstream
            self._restore_after_s = restore_after_s

    def close(self) -> None:
        self._stop.set()
        self._drop_all()
        self._server.close()

    # plumbing
    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update({client, upstream})
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outgoing: bool) -> None:
        try:
            while chunk := src.recv(65536):
                fire = False
                with self._lock:
                    if self._cut_after is not None and outgoing == self._cut_upstream:
                        self._sent += len(chunk)
                        if self._sent >= self._cut_after:
                            self._cut_after, fire = None, True
                if fire:
                    self.cuts += 1
                    self.cut()
                    if self._restore_after_s is not None:
                        threading.Timer(self._restore_after_s, self.restore).start()
                    return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

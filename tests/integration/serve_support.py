"""The serving application on a real uvicorn in a thread of the test process, and
`mlops serve` as a subprocess (for workers, signals and reloads)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from mlops.config import Params
from mlops.serving.app import create_app


@dataclass
class Server:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def start(params: Params) -> Server:
    """create_app(params) served on a free loopback port, once it takes connections."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(create_app(params), log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server stopped at start"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", server, thread)


def stop(running: Server) -> None:
    running.server.should_exit = True
    running.thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(project: Path, port: int) -> subprocess.Popen[str]:
    """`mlops serve` in ``project`` on ``port`` (stderr kept for the test to read)."""
    command = [sys.executable, "-m", "mlops", "serve", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_ready(process: subprocess.Popen[str], url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"mlops serve exited {process.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"{url}/ready did not answer 200 within {timeout} s")

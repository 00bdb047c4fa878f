"""Load generation with wrk (Debian: apt-get install -y wrk), a client that is not the server's own code,
and server processes to point it at: the one load path of serve.py, serve_stack.py and serve_ops.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]

# one POST body from $BODY (binary safe), extra headers from $HEADERS (JSON); per-thread counters; optional
# $EXPECT (JSON {version: file with the exact answer}) to check every answer against the version it names
LUA = r"""
wrk.method = "POST"
local f = io.open(os.getenv("BODY"), "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
local extra = os.getenv("HEADER_NAME")
if extra then wrk.headers[extra] = os.getenv("HEADER_VALUE") end
local expect_spec = os.getenv("EXPECT")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  ok, bad, s503, other, unknown = 0, 0, 0, 0, 0
  expect = {}
  if expect_spec then
    for v, path in string.gmatch(expect_spec, "([^=;]+)=([^;]+)") do
      local g = io.open(path, "rb"); expect[v] = g:read("*a"); g:close()
    end
  end
end
function response(status, headers, body)
  if status == 503 then s503 = s503 + 1
  elseif status ~= 200 then other = other + 1
  elseif expect_spec then
    local want = expect[headers["x-model-version"] or ""]
    if want == nil then unknown = unknown + 1 elseif want == body then ok = ok + 1 else bad = bad + 1 end
  else ok = ok + 1 end
end
function done(summary, latency, requests)
  local t = {ok = 0, bad = 0, s503 = 0, other = 0, unknown = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "ok": %d, "wrong": %d, "s503": %d, ' ..
    '"other_status": %d, "unknown_version": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %d}\n', summary.requests,
    summary.duration, t.ok, t.bad, t.s503, t.other, t.unknown, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def need_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Wrk:
    """A wrk run (1 thread) posting `body`; `result()` waits for it (or stops it with SIGINT when `stop`) and
    returns its counts, req/s and latency percentiles (ms)."""

    def __init__(self, url: str, body: bytes, connections: int, seconds: float, headers: dict | None = None,
                 content_type: str = "application/json", expect: dict[str, bytes] | None = None,
                 timeout_s: int = 10) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="distilts-wrk-")
        d = Path(self.dir.name)
        script, body_file = d / "post.lua", d / "body"
        script.write_text(LUA)
        body_file.write_bytes(body)
        env = {**os.environ, "BODY": str(body_file), "CONTENT_TYPE": content_type}
        for k, v in (headers or {}).items():
            env["HEADER_NAME"], env["HEADER_VALUE"] = k, v
        if expect:
            parts = []
            for v, answer in expect.items():
                p = d / f"expect-{v}"
                p.write_bytes(answer)
                parts.append(f"{v}={p}")
            env["EXPECT"] = ";".join(parts)
        self.connections = connections
        self.proc = subprocess.Popen([need_wrk(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                                      f"--timeout={timeout_s}s", "-s", str(script), url],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def result(self, stop: bool = False) -> dict:
        if stop:
            self.proc.send_signal(2)  # wrk stops on SIGINT and still reports
        stdout, stderr = self.proc.communicate()
        self.dir.cleanup()
        line = next((ln for ln in stdout.splitlines() if ln.startswith("WRKJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed: {stdout[-800:]} {stderr[-800:]}")
        out = json.loads(line[8:])
        out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
        for k in ("p50", "p90", "p99", "max", "mean"):
            out[f"{k}_ms"] = out.pop(f"{k}_us") / 1e3
        out["errors"] = out["connect_errors"] + out["read_errors"] + out["write_errors"] + out["timeouts"]
        out["connections"] = self.connections
        return out


def wrk(url: str, body: bytes, connections: int, seconds: float, **kw) -> dict:
    """One wrk run to its end (see Wrk)."""
    return Wrk(url, body, connections, seconds, **kw).result()


class Server:
    """A server process on a free loopback port, up once `ready_path` answers 200."""

    def __init__(self, argv: list[str], port: int, log: Path, ready_path: str = "/v2/health/ready",
                 env: dict | None = None) -> None:
        self.port, self.url = port, f"http://{HOST}:{port}"
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server {argv} did not start; see {log}")
            time.sleep(0.2)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def stop(self) -> int | str:
        """SIGINT (graceful shutdown); the exit code, or "killed" when it did not exit within 60 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: graceful
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed"
        return self.proc.returncode


def answer(url: str, body: bytes) -> tuple[str, bytes]:
    """One `POST /forecast`: (the X-Model-Version it names, the answer's bytes)."""
    req = urllib.request.Request(f"{url}/forecast", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers["x-model-version"], r.read()


def stats(url: str) -> dict:
    """The server's `GET /stats` counters."""
    with urllib.request.urlopen(f"{url}/stats", timeout=30) as r:
        return json.loads(r.read())


def distilts_server(path: str, log: Path, *extra: str) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "distilts.cli", "serve", str(path), "--host", HOST, "--port", str(port),
                   "--no-access-log", *extra], port, log)


def bare_server(answer_bytes: int, log: Path) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(ROOT / "benchmarks" / "support"),
                   "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning"], port, log,
                  ready_path="/docs", env={"BARE_ANSWER_BYTES": str(answer_bytes)})

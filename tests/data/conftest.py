"""Fixtures for the data-layer tests: an isolated environment, a synthetic dataset registered under
the name ``synth``, and a local HTTP server that serves (and misbehaves) on demand."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import pathlib
import threading
import time

import sys

import numpy as np
import pytest

# The package may not be installed in the virtualenv (no `pip install -e .`): import it from the
# repository this file lives in.
_REPO = pathlib.Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from minivae.data import registry, sources  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.data.idx import write_idx  # noqa: E402  (after the sys.path / environment set-up above)
from minivae.data.registry import Checksum, DatasetInfo  # noqa: E402  (after the sys.path / environment set-up above)


@pytest.fixture
def isolated(monkeypatch, tmp_path) -> pathlib.Path:
    """No $MINIVAE_DATA / $MINIVAE_MIRROR, the cache under tmp_path/cache, a clean verification
    cache.  Returns the cache root (.../cache/minivae)."""
    monkeypatch.delenv("MINIVAE_DATA", raising=False)
    monkeypatch.delenv("MINIVAE_MIRROR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sources.clear_verification_cache()
    yield tmp_path / "cache" / "minivae"
    sources.clear_verification_cache()


class Synth:
    """Synthetic IDX .gz files for the four files of a dataset, and their registry entry."""

    def __init__(self, tmp_path: pathlib.Path, n_train: int = 50, n_test: int = 20, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.src = tmp_path / "synth-src"
        self.src.mkdir()
        self.arrays = {}
        self.gz: dict[str, bytes] = {}
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labels = (np.arange(n) % 10).astype(np.uint8)
            for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
                fname = f"{prefix}-{kind}-ubyte.gz"
                write_idx(self.src / fname, arr, gzip=True)
                self.arrays[fname] = arr
                self.gz[fname] = (self.src / fname).read_bytes()
        self.checksums = {
            f: (Checksum("sha256", hashlib.sha256(gzip.decompress(b)).hexdigest(), "decompressed"),
                Checksum("md5", hashlib.md5(b).hexdigest(), "file"))
            for f, b in self.gz.items()}
        self.system_dir = tmp_path / "system-synth"
        self.info = DatasetInfo(
            name="synth", title="synthetic test data", mirrors=(),
            checksums=tuple(self.checksums.items()),
            class_names=tuple(str(i) for i in range(10)),
            system_dirs=(str(self.system_dir),), install_hint="  - (synthetic test dataset)")

    def decompressed(self, fname: str) -> bytes:
        return gzip.decompress(self.gz[fname])

    def copy_to(self, folder: pathlib.Path, decompress: bool = False) -> pathlib.Path:
        folder.mkdir(parents=True, exist_ok=True)
        for f, b in self.gz.items():
            if decompress:
                (folder / f[:-3]).write_bytes(gzip.decompress(b))
            else:
                (folder / f).write_bytes(b)
        return folder


@pytest.fixture
def synth(isolated, tmp_path, monkeypatch) -> Synth:
    s = Synth(tmp_path)
    monkeypatch.setitem(registry.REGISTRY, "synth", s.info)
    return s


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the client gave up (time-out tests): ignore
        pass


class LocalServer:
    """Routes: ``path -> (kind, payload)`` with kind ``ok`` / ``truncated`` / ``slow_headers`` /
    ``slow_body``; anything else is a 404.  ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.hits: list[str] = []
        self.delay = 2.0
        routes, hits, server = self.routes, self.hits, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hits.append(self.path)
                kind, body = routes.get(self.path, ("404", b""))
                if kind == "404":
                    self.send_error(404, "Not Found")
                    return
                if kind == "slow_headers":
                    time.sleep(server.delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                length = len(body) + (1000 if kind == "truncated" else 0)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if kind == "slow_body":
                    self.wfile.write(body[:10])
                    self.wfile.flush()
                    time.sleep(server.delay)
                    body = body[10:]
                self.wfile.write(body)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()

"""Downloads against a real local HTTP server: success, corrupt data, truncation, 404, time-out,
mirror fallback -- and never a partial file left behind."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from minivae.data import (ChecksumError, DownloadError, download, fetch, load_dataset, mirrors_for,
                          target_dir)
from minivae.data.registry import Checksum

IMAGES = "train-images-idx3-ubyte.gz"


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_ok(synth, server, isolated):
    server.routes["/m/" + IMAGES] = ("ok", synth.gz[IMAGES])
    dest = isolated / "synth" / IMAGES
    out = download(server.url + "/m/" + IMAGES, dest, synth.checksums[IMAGES], timeout=5, progress=False)
    assert out == dest
    assert dest.read_bytes() == synth.gz[IMAGES]
    assert _leftovers(dest.parent) == [IMAGES]


def test_download_checksum_mismatch(synth, server, isolated):
    bad = bytearray(synth.decompressed(IMAGES))
    bad[-1] ^= 0xFF
    import gzip
    server.routes["/m/" + IMAGES] = ("ok", gzip.compress(bytes(bad)))
    dest = isolated / "synth" / IMAGES
    with pytest.raises(ChecksumError) as info:
        download(server.url + "/m/" + IMAGES, dest, synth.checksums[IMAGES], timeout=5, progress=False)
    msg = str(info.value)
    expected_sha = synth.checksums[IMAGES][0].hexdigest
    assert "expected" in msg and expected_sha in msg
    assert hashlib.sha256(bytes(bad)).hexdigest() in msg  # what was got
    assert info.value.expected and info.value.got
    assert _leftovers(dest.parent) == []


def test_download_truncated(synth, server, isolated):
    server.routes["/m/" + IMAGES] = ("truncated", synth.gz[IMAGES])
    dest = isolated / "synth" / IMAGES
    with pytest.raises(DownloadError, match="truncated") as info:
        download(server.url + "/m/" + IMAGES, dest, synth.checksums[IMAGES], timeout=5, progress=False)
    assert not isinstance(info.value, ChecksumError)
    assert str(len(synth.gz[IMAGES]) + 1000) in str(info.value)
    assert _leftovers(dest.parent) == []


def test_download_404(synth, server, isolated):
    url = server.url + "/nothing/" + IMAGES
    dest = isolated / "synth" / IMAGES
    with pytest.raises(DownloadError) as info:
        download(url, dest, synth.checksums[IMAGES], timeout=5, progress=False)
    assert "404" in str(info.value) and url in str(info.value)
    assert _leftovers(dest.parent) == []


@pytest.mark.parametrize("kind", ["slow_headers", "slow_body"])
def test_download_timeout(synth, server, isolated, kind):
    server.delay = 1.5
    server.routes["/m/" + IMAGES] = (kind, synth.gz[IMAGES])
    dest = isolated / "synth" / IMAGES
    with pytest.raises(DownloadError, match="timed out") as info:
        download(server.url + "/m/" + IMAGES, dest, synth.checksums[IMAGES], timeout=0.5, progress=False)
    assert "/m/" + IMAGES in str(info.value)
    assert _leftovers(dest.parent) == []


def test_download_does_not_replace_existing_on_failure(synth, server, isolated):
    dest = isolated / "synth" / IMAGES
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"previous")
    with pytest.raises(DownloadError):
        download(server.url + "/missing", dest, synth.checksums[IMAGES], timeout=5, progress=False)
    assert dest.read_bytes() == b"previous"
    assert _leftovers(dest.parent) == [IMAGES]


def test_download_connection_refused(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="could not connect"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", (), timeout=2, progress=False)
    assert _leftovers(tmp_path) == []


def test_fetch_mirror_fallback_and_load(synth, server, isolated):
    for f, b in synth.gz.items():
        server.routes["/good/" + f] = ("ok", b)
    mirrors = [server.url + "/bad", server.url + "/good/"]
    paths = fetch("synth", mirrors=mirrors, progress=False, timeout=5)
    cache = isolated / "synth"
    assert set(paths) == {"train", "test"}
    assert paths["train"] == (cache / "train-images-idx3-ubyte.gz", cache / "train-labels-idx1-ubyte.gz")
    assert _leftovers(cache) == sorted(synth.gz)
    # every file was tried on the first mirror (404) and then fetched from the second
    assert "/bad/" + IMAGES in server.hits and "/good/" + IMAGES in server.hits
    images, labels = load_dataset("synth", "train")
    np.testing.assert_array_equal(images, synth.arrays[IMAGES])
    assert labels.dtype == np.int64
    # a second fetch uses the verified local files: no new requests
    n = len(server.hits)
    fetch("synth", mirrors=mirrors, progress=False)
    assert len(server.hits) == n


def test_fetch_mirror_from_environment(synth, server, isolated, monkeypatch):
    for f, b in synth.gz.items():
        server.routes["/env/" + f] = ("ok", b)
    monkeypatch.setenv("MINIVAE_MIRROR", server.url + "/env")
    assert mirrors_for("synth") == [server.url + "/env/"]
    paths = fetch("synth", splits=("test",), progress=False, timeout=5)
    assert set(paths) == {"test"}
    assert _leftovers(isolated / "synth") == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_fetch_into_data_dir(synth, server, tmp_path):
    for f, b in synth.gz.items():
        server.routes["/m/" + f] = ("ok", b)
    data_dir = tmp_path / "mydata"
    paths = fetch("synth", data_dir=data_dir, mirrors=[server.url + "/m/"], progress=False, timeout=5)
    assert target_dir("synth", data_dir) == data_dir / "synth"
    assert paths["test"][0] == data_dir / "synth" / "t10k-images-idx3-ubyte.gz"
    images, _ = load_dataset("synth", "test", data_dir=data_dir)
    assert images.shape == (20, 28, 28)


def test_fetch_all_mirrors_fail_lists_each(synth, server, isolated):
    server.routes["/corrupt/" + IMAGES] = ("ok", b"\x1f\x8bnot really gzip")
    mirrors = [server.url + "/a/", server.url + "/corrupt/"]
    with pytest.raises(DownloadError) as info:
        fetch("synth", mirrors=mirrors, progress=False, timeout=5)
    msg = str(info.value)
    assert server.url + "/a/" + IMAGES in msg and "404" in msg
    assert server.url + "/corrupt/" + IMAGES in msg and "checksum mismatch" in msg
    assert _leftovers(isolated / "synth") == []


def test_fetch_replaces_corrupt_file_in_cache(synth, server, isolated):
    for f, b in synth.gz.items():
        server.routes["/m/" + f] = ("ok", b)
    cache = synth.copy_to(isolated / "synth")
    (cache / IMAGES).write_bytes(b"garbage")
    fetch("synth", mirrors=[server.url + "/m/"], progress=False, timeout=5)
    assert (cache / IMAGES).read_bytes() == synth.gz[IMAGES]
    assert server.hits == ["/m/" + IMAGES]


def test_file_checksum_accepts_either_form(synth, server, isolated):
    """A .gz with another gzip wrapper passes on the decompressed checksum; a file checksum alone
    (md5 of the served .gz) also passes."""
    import gzip
    rewrapped = gzip.compress(synth.decompressed(IMAGES), compresslevel=1, mtime=12345)
    assert rewrapped != synth.gz[IMAGES]
    server.routes["/m/" + IMAGES] = ("ok", rewrapped)
    dest = isolated / "a" / IMAGES
    download(server.url + "/m/" + IMAGES, dest, synth.checksums[IMAGES], timeout=5, progress=False)
    server.routes["/n/" + IMAGES] = ("ok", synth.gz[IMAGES])
    only_md5 = (Checksum("md5", hashlib.md5(synth.gz[IMAGES]).hexdigest(), "file"),)
    download(server.url + "/n/" + IMAGES, isolated / "b" / IMAGES, only_md5, timeout=5, progress=False)
    with pytest.raises(ChecksumError):  # the re-wrapped file does not match the .gz md5
        download(server.url + "/m/" + IMAGES, isolated / "c" / IMAGES, only_md5, timeout=5, progress=False)
    assert _leftovers(isolated / "c") == []


def test_fetch_removes_part_files_of_killed_downloads(synth, server, isolated):
    """A download killed by SIGKILL leaves its ``.NAME.RANDOM.part`` file (no ``finally`` runs); the next
    fetch into that folder deletes it once it holds the folder's lock."""
    cache = isolated / "synth"
    cache.mkdir(parents=True)
    stale = [cache / f".{IMAGES}.k1ll3d.part", cache / ".t10k-labels-idx1-ubyte.gz.x.part"]
    for p in stale:
        p.write_bytes(b"half a file")
    for f, b in synth.gz.items():
        server.routes["/good/" + f] = ("ok", b)
    fetch("synth", mirrors=[server.url + "/good/"], progress=False, timeout=5)
    assert not any(p.exists() for p in stale)
    assert _leftovers(cache) == sorted(synth.gz)
    # also when every file is already there (nothing to download): opening the folder cleans it
    stale[0].write_bytes(b"again")
    fetch("synth", mirrors=[server.url + "/good/"], progress=False, timeout=5)
    assert _leftovers(cache) == sorted(synth.gz)


def test_fetch_interrupted_exits_130_and_sigterm_143(synth, isolated, monkeypatch, capsys):
    import signal

    import minivae.data as data_mod
    from minivae.cli import main
    from minivae.signals import Interrupted

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data_mod, "fetch", ctrl_c)
    assert main(["data", "fetch", "synth", "--no-progress"]) == 130
    assert capsys.readouterr().err.strip().startswith("minivae data: interrupted (SIGINT)")

    def term(*args, **kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(data_mod, "fetch", term)
    assert main(["data", "fetch", "synth", "--no-progress"]) == 143
    assert "interrupted (SIGTERM)" in capsys.readouterr().err

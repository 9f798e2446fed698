"""The `minivae data` sub-command (driven through its own argparse parser)."""
from __future__ import annotations

import argparse

from minivae.commands import data as data_cmd


def _run(argv):
    parser = argparse.ArgumentParser(prog="minivae data")
    data_cmd.add_arguments(parser)
    return data_cmd.run(parser.parse_args(argv))


def test_module_interface():
    assert data_cmd.__doc__.strip().splitlines()[0]
    assert callable(data_cmd.add_arguments) and callable(data_cmd.run)


def test_list(synth, tmp_path, capsys):
    folder = synth.copy_to(tmp_path / "d")
    assert _run(["list", "--data-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("synth ") and " train " in line]
    assert row and "present" in row[0] and str(folder) in row[0]
    assert any(line.startswith("kmnist") for line in out.splitlines())


def test_fetch_ok(synth, server, tmp_path, capsys):
    for f, b in synth.gz.items():
        server.routes["/m/" + f] = ("ok", b)
    rc = _run(["fetch", "synth", "--data-dir", str(tmp_path / "dd"), "--mirror", server.url + "/m/",
               "--no-progress", "--split", "test"])
    assert rc == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "dd" / "synth" / "t10k-images-idx3-ubyte.gz") in out
    assert sorted(p.name for p in (tmp_path / "dd" / "synth").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_fetch_error_exit_status_and_message(synth, server, isolated, capsys):
    rc = _run(["fetch", "synth", "--mirror", server.url + "/nothing/", "--no-progress"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "404" in captured.err and "Traceback" not in captured.err
    assert not (isolated / "synth").exists() or not any((isolated / "synth").iterdir())


def test_fetch_unknown_dataset(capsys):
    assert _run(["fetch", "nope", "--no-progress"]) == 1
    assert "unknown dataset" in capsys.readouterr().err

"""draw_graph: DOT text with ops, shapes, dtypes, names and gradient norms; rendering with or without `dot`."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import viz

HAS_DOT = shutil.which("dot") is not None
HAS_GRAPHVIZ_PKG = viz._graphviz_module() is not None
BUILDERS = [False] + ([True] if HAS_GRAPHVIZ_PKG else [])


def _graph(rng):
    x = mv.Tensor(rng.standard_normal((1, 1, 5, 5)), requires_grad=True)
    w = mv.Tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
    b = mv.Tensor(rng.standard_normal(2), requires_grad=True)
    eps = mv.Tensor(rng.standard_normal((1, 2)))
    h = F.relu(F.conv2d(x, w, b, stride=1, padding=0))
    mu, logvar = F.split(F.reshape(h, (1, 18))[:, :4], 2, axis=1)
    z, kl = F.reparameterize_kl(mu, logvar, eps)
    loss = F.sum(z * z) + F.sum(kl)
    return loss, dict(x=x, w=w, b=b, eps=eps, h=h, z=z)


def _labels(source):
    """node id -> label text (with DOT's \\n kept) for every node statement."""
    return dict(re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', source, flags=re.M))


def _edges(source):
    return re.findall(r"^\s*(\w+) -> (\w+)", source, flags=re.M)


@pytest.mark.parametrize("use_graphviz", BUILDERS)
def test_nodes_show_ops_shapes_dtypes_and_names(rng, use_graphviz):
    loss, t = _graph(rng)
    g = viz.draw_graph(loss, names={t["x"]: "x", t["w"]: "conv.weight", t["h"]: "h"}, use_graphviz=use_graphviz)
    assert g.path is None and g.rendered is False and g.source == str(g)
    labels = _labels(g.source).values()
    assert any(lab.startswith("Conv2d\\nstride=(1, 1), padding=(0, 0)\\n1x2x3x3 float64") for lab in labels)
    assert any(lab.startswith("ReparameterizeKL\\nout[0] 1x2 float64\\nout[1] 1 float64") for lab in labels)
    assert any(lab.startswith("ReLU\\nh: 1x2x3x3 float64") for lab in labels)
    assert "x\\n1x1x5x5 float64" in labels
    assert "conv.weight\\n2x1x3x3 float64" in labels
    assert "leaf\\n2 float64" in labels          # the unnamed bias
    assert "constant\\n1x2 float64" in labels    # eps
    assert not any("|grad|" in lab for lab in labels)  # before backward


@pytest.mark.parametrize("use_graphviz", BUILDERS)
def test_edges_follow_the_forward_pass_and_each_node_appears_once(rng, use_graphviz):
    x = mv.Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * x + x  # x used three times
    g = viz.draw_graph(F.sum(y), names={x: "x"}, use_graphviz=use_graphviz)
    labels = _labels(g.source)
    ids = {lab.split("\\n")[0]: node for node, lab in labels.items()}
    assert sorted(ids) == ["Add", "Mul", "Sum", "x"]
    edges = _edges(g.source)
    assert edges.count((ids["x"], ids["Mul"])) == 2
    assert (ids["x"], ids["Add"]) in edges and (ids["Mul"], ids["Add"]) in edges
    assert (ids["Add"], ids["Sum"]) in edges
    assert 'label="2x3"' in g.source or "label=2x3" in g.source


def test_gradient_norms_after_backward_on_leaves_and_retained_grads(rng):
    loss, t = _graph(rng)
    t["h"].retain_grad()
    loss.backward()
    g = viz.draw_graph(loss, names={t["x"]: "x", t["w"]: "w"})
    labels = list(_labels(g.source).values())
    for name in ("x", "w"):
        norm = np.linalg.norm(t[name].grad.data)
        assert any(lab.startswith(name + "\\n") and f"|grad| = {norm:.4g}" in lab for lab in labels)
    hnorm = np.linalg.norm(t["h"].grad.data)
    assert any(lab.startswith("ReLU") and f"|grad| = {hnorm:.4g}" in lab for lab in labels)
    assert not any(lab.startswith("constant") and "|grad|" in lab for lab in labels)


def test_parameter_names_from_a_module(rng):
    layer = mv.nn.Linear(3, 2, dtype=np.float64)
    x = mv.Tensor(rng.standard_normal((4, 3)))
    loss = F.sum(layer(x))
    loss.backward()
    g = viz.draw_graph(loss, params=layer.named_parameters())
    labels = list(_labels(g.source).values())
    names = dict(layer.named_parameters())
    assert set(names) == {"weight", "bias"}
    for name, p in names.items():
        assert any(lab.startswith(f"{name}\\n{'x'.join(map(str, p.shape))} float64\\n|grad| = ") for lab in labels)


def test_params_as_pairs_and_names_override(rng):
    w = mv.Tensor(np.ones(3), requires_grad=True)
    g = viz.draw_graph(F.sum(w * 2.0), params=[("enc.w", w)], names=[(w, "my w")])
    assert "my w\\n3 float64" in _labels(g.source).values()


def test_a_leaf_alone_is_one_node():
    x = mv.Tensor(np.ones(4), requires_grad=True)
    g = viz.draw_graph(x, names={x: "x"})
    assert list(_labels(g.source).values()) == ["x\\n4 float64"]
    assert _edges(g.source) == []


def test_quotes_in_names_are_escaped():
    x = mv.Tensor(np.ones(2), requires_grad=True)
    g = viz.draw_graph(F.sum(x), names={x: 'say "hi" \\ bye'}, use_graphviz=False)
    assert 'say \\"hi\\" \\\\ bye' in g.source


def test_without_dot_an_image_request_writes_dot_text(tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "_dot_binary", lambda: None)
    x = mv.Tensor(np.ones(2), requires_grad=True)
    g = viz.draw_graph(F.sum(F.exp(x)), tmp_path / "graph.svg")
    assert g.path == str(tmp_path / "graph.dot") and g.format == "dot" and g.rendered is False
    assert (tmp_path / "graph.dot").read_text() == g.source
    assert not (tmp_path / "graph.svg").exists()


def test_path_without_suffix_gets_the_format_appended(tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "_dot_binary", lambda: None)
    x = mv.Tensor(np.ones(2), requires_grad=True)
    g = viz.draw_graph(F.sum(x), tmp_path / "g", format="dot")
    assert g.path == str(tmp_path / "g.dot") and g.source.startswith("digraph")


def test_plain_writer_when_graphviz_package_is_missing(monkeypatch):
    monkeypatch.setattr(viz, "_graphviz_module", lambda: None)
    x = mv.Tensor(np.ones(2), requires_grad=True)
    g = viz.draw_graph(F.sum(x), names={x: "x"})
    assert g.source.startswith("digraph minivae {") and g.source.rstrip().endswith("}")
    with pytest.raises(ImportError, match="pip install graphviz"):
        viz.draw_graph(F.sum(x), use_graphviz=True)


def test_bad_arguments():
    x = mv.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="unknown format"):
        viz.draw_graph(x, format="jpeg-2000")
    with pytest.raises(TypeError, match="Tensor"):
        viz.draw_graph(np.ones(2))


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` program is not installed")
@pytest.mark.parametrize("use_graphviz", BUILDERS)
def test_renders_svg_and_png_with_dot(rng, tmp_path, use_graphviz):
    loss, t = _graph(rng)
    loss.backward()
    g = viz.draw_graph(loss, tmp_path / "graph.svg", names={t["x"]: 'x "input"'}, use_graphviz=use_graphviz)
    assert g.rendered and g.format == "svg" and g.path == str(tmp_path / "graph.svg")
    svg = (tmp_path / "graph.svg").read_text()
    assert "<svg" in svg and "Conv2d" in svg and "ReparameterizeKL" in svg
    p = viz.draw_graph(loss, tmp_path / "graph", format="png", use_graphviz=use_graphviz)
    assert p.path == str(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` program is not installed")
def test_plain_writer_output_is_valid_dot(rng):
    loss, _ = _graph(rng)
    source = viz.graph_source(loss, use_graphviz=False)
    proc = subprocess.run(["dot", "-Tcanon"], input=source.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` program is not installed")
def test_dot_failure_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "graph_source", lambda *a, **k: "digraph { this is not dot")
    x = mv.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="dot -Tsvg"):
        viz.draw_graph(x, tmp_path / "bad.svg")


# ------------------------------------------------------------------------------- inline display (Jupyter)
def _ipython_bundle(obj):
    """What IPython's display machinery (as a Jupyter kernel uses it) makes of ``obj``: {mimetype: data}."""
    from IPython.core.interactiveshell import InteractiveShell

    data, _ = InteractiveShell.instance().display_formatter.format(obj)
    return data


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` program is not installed")
def test_drawing_shows_itself_as_svg_in_jupyter(rng):
    pytest.importorskip("IPython")
    loss, t = _graph(rng)
    g = viz.draw_graph(loss, names={t["x"]: "x"})
    bundle = _ipython_bundle(g)
    assert "<svg" in bundle["image/svg+xml"] and "Conv2d" in bundle["image/svg+xml"]
    assert "image/png" not in bundle


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` program is not installed")
def test_drawing_asked_as_png_shows_itself_as_png(rng):
    pytest.importorskip("IPython")
    loss, _ = _graph(rng)
    bundle = _ipython_bundle(viz.draw_graph(loss, format="png"))
    assert bundle["image/png"][:8] == b"\x89PNG\r\n\x1a\n" and "image/svg+xml" not in bundle


def test_without_dot_the_drawing_shows_its_dot_text_with_a_note(rng, monkeypatch):
    pytest.importorskip("IPython")
    monkeypatch.setattr(viz, "_dot_binary", lambda: None)
    loss, _ = _graph(rng)
    g = viz.draw_graph(loss)
    bundle = _ipython_bundle(g)
    assert set(bundle) == {"text/plain"}
    text = bundle["text/plain"]
    assert text.startswith("(Graphviz's `dot` is not installed") and "apt-get install graphviz" in text
    assert g.source in text

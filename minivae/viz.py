"""Draw the computation graph behind a tensor (Graphviz DOT), with shapes, dtypes and gradient norms.

::

    import minivae as mv, minivae.functional as F
    from minivae.viz import draw_graph
    x = mv.Tensor(np.ones((1, 1, 5, 5)), requires_grad=True)
    w = mv.Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    loss = F.relu(F.conv2d(x, w)).sum()
    loss.backward()
    g = draw_graph(loss, "graph.svg", names={x: "x", w: "w"})
    g.path      # "graph.svg" where Graphviz's `dot` is installed, else "graph.dot" (DOT text)
    g.source    # the DOT text either way
    draw_graph(loss)   # as a notebook cell's last line: the graph drawn inline (SVG; text without `dot`)

Nodes: one box per :class:`~minivae.autograd.function.Function` (op name, the shape and dtype of each
output, and the L2 norm of an output's ``.grad`` when it was kept with ``retain_grad()``), one ellipse
per leaf tensor (its name if given, shape, dtype and, after backward, the L2 norm of its ``.grad``);
constants (leaves that do not require grad) are dashed. Edges point the way the forward pass runs and
are labelled with the shape of the tensor that flows along them. The output's op has a thick border.

The DOT text is built with the ``graphviz`` Python package when it is importable, else by a small
writer here; the two give equivalent graphs. Rendering to SVG/PNG/PDF needs the ``dot`` program
(``apt-get install graphviz`` or ``conda install graphviz``); without it the DOT text is written instead
and the returned path says so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

__all__ = ["draw_graph", "GraphDrawing", "graph_source"]

#: Formats ``dot`` is asked to render; "dot"/"gv" mean the DOT text itself.
RENDER_FORMATS = ("svg", "png", "pdf")
TEXT_FORMATS = ("dot", "gv")

#: Non-array parameters of an op shown under its name when present.
_OP_PARAMS = ("stride", "padding", "output_padding", "kernel_size", "dim", "dims", "keepdim", "perm", "shape", "index",
               "bounds", "repeats", "dtype", "largest", "beta", "threshold", "negative_slope", "lo", "hi")


@dataclass(frozen=True)
class GraphDrawing:
    """What :func:`draw_graph` produced.

    Attributes:
        source: the DOT text (str).
        path: the file written (str), or None when ``draw_graph`` was given no path.
        format: the format of that file: "svg", "png" or "pdf" when rendered by ``dot``, "dot" for DOT text.
        rendered: True when ``dot`` rendered the file, False when DOT text was written (or nothing).
    """

    source: str
    path: str | None
    format: str
    rendered: bool

    def __str__(self) -> str:
        return self.source

    # ------------------------------------------------------------------ Jupyter / IPython display
    def _render(self, fmt: str) -> bytes | None:
        """The graph rendered by ``dot -TFMT`` (bytes), or None when ``dot`` is not installed."""
        dot = _dot_binary()
        if dot is None:
            return None
        return _run_dot(dot, fmt, self.source)

    def _repr_svg_(self) -> str | None:
        """SVG for Jupyter (the drawing shows itself inline); None without ``dot`` or when PNG was asked
        for, so that the frontend falls back to :meth:`_repr_png_` or the text of :meth:`_repr_pretty_`."""
        if self.format == "png":
            return None
        data = self._render("svg")
        return None if data is None else data.decode("utf-8")

    def _repr_png_(self) -> bytes | None:
        """PNG for Jupyter when the drawing was asked for as ``format="png"`` and ``dot`` is installed."""
        return self._render("png") if self.format == "png" else None

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """The text IPython shows where no image is available: a one-line note and the DOT text."""
        note = "" if _dot_binary() else (
            "(Graphviz's `dot` is not installed, so here is the graph as DOT text; "
            "apt-get install graphviz, or conda install graphviz, to see it drawn)\n")
        printer.text(note + self.source)


def _dot_binary() -> str | None:
    """Path of Graphviz's ``dot`` program, or None when it is not installed."""
    return shutil.which("dot")


def _graphviz_module():
    try:
        import graphviz
    except ImportError:
        return None
    return graphviz


# ---------------------------------------------------------------------------------------- labels
def _escape(text: str) -> str:
    """Escape one label line for a DOT double-quoted string."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _label(lines) -> str:
    """Label lines joined by DOT's ``\\n`` line break, each escaped."""
    return "\\n".join(_escape(line) for line in lines)


def _shape_text(shape) -> str:
    return "x".join(str(int(n)) for n in shape) if len(shape) else "scalar"


def _grad_norm(tensor) -> float | None:
    if tensor is None or tensor.grad is None:
        return None
    data = tensor.grad.data
    if not isinstance(data, np.ndarray):
        data = data.astype("float64")
        return float((data * data).sum() ** 0.5)
    return float(np.sqrt(np.sum(np.square(data.astype(np.float64)))))


def _index_text(index) -> str:
    """``x[index]`` written as in Python source: ``[:, 1:3]``, ``[array(4,)]``."""
    def one(i):
        if isinstance(i, slice):
            text = ("" if i.start is None else str(i.start)) + ":" + ("" if i.stop is None else str(i.stop))
            return text + (f":{i.step}" if i.step is not None else "")
        if i is Ellipsis:
            return "..."
        if i is None:
            return "None"
        if hasattr(i, "shape") and getattr(i, "ndim", 0) > 0:
            return f"array{tuple(i.shape)}"
        return repr(i)
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(one(i) for i in parts) + "]"


def _param_text(fn) -> str | None:
    parts = []
    for key in _OP_PARAMS:
        if key in vars(fn):
            value = vars(fn)[key]
            if key == "axes" and "axis" in vars(fn):
                continue  # a reduction's normalised copy of its axis
            if key == "index":
                text = _index_text(value)
                value = text if len(text) <= 30 else text[:27] + "..."
            parts.append(f"{key}={value}")
    return ", ".join(parts) if parts else None


def _name_map(names, params) -> dict[int, str]:
    """id(tensor) -> name from ``names`` ({tensor: name} or (tensor, name) pairs) and ``params``
    ((name, tensor) pairs as ``Module.named_parameters()`` yields, or {name: tensor})."""
    out: dict[int, str] = {}
    if params is not None:
        items = params.items() if isinstance(params, dict) else params
        for name, t in items:
            out[id(t)] = str(name)
    if names is not None:
        items = names.items() if isinstance(names, dict) else names
        for t, name in items:
            out[id(t)] = str(name)
    return out


# ---------------------------------------------------------------------------------------- graph walk
def _collect(tensor, names: dict[int, str]):
    """Nodes and edges of the graph behind ``tensor``.

    Returns (nodes, edges): nodes are (node_id, label, attributes) in a deterministic order (the output
    first, then breadth-first towards the leaves); edges are (tail_id, head_id, label).
    """
    nodes, edges = [], []
    ids: dict[int, str] = {}

    def leaf_node(t) -> str:
        key = id(t)
        if key in ids:
            return ids[key]
        node = f"t{len(ids)}"
        ids[key] = node
        name = names.get(key)
        kind = "leaf" if t.requires_grad else "constant"
        lines = [name if name else kind, f"{_shape_text(t.shape)} {t.dtype}"]
        norm = _grad_norm(t)
        if norm is not None:
            lines.append(f"|grad| = {norm:.4g}")
        attrs = {"shape": "ellipse", "style": "filled", "fillcolor": "#fff2cc" if t.requires_grad else "#eeeeee"}
        if not t.requires_grad:
            attrs["style"] = "filled,dashed"
        nodes.append((node, _label(lines), attrs))
        return node

    def fn_node(fn, root_index=None) -> str:
        key = id(fn)
        if key in ids:
            return ids[key]
        node = f"f{len(ids)}"
        ids[key] = node
        lines = [fn.name]
        params = _param_text(fn)
        if params:
            lines.append(params)
        several = len(fn.output_meta) > 1
        for i, (shape, dtype, _) in enumerate(fn.output_meta):
            out = fn._outputs[i]() if i < len(fn._outputs) else None
            name = names.get(id(out)) if out is not None else None
            head = ("out[%d] " % i if several else "") + (f"{name}: " if name else "")
            line = f"{head}{_shape_text(shape)} {np.dtype(dtype)}"
            norm = _grad_norm(out)
            if norm is not None:
                line += f"  |grad| = {norm:.4g}"
            lines.append(line)
        attrs = {"shape": "box", "style": "rounded,filled", "fillcolor": "#dae8fc"}
        if root_index is not None:
            attrs["penwidth"] = "2.5"
        nodes.append((node, _label(lines), attrs))
        return node

    if tensor._ctx is None:
        leaf_node(tensor)
        return nodes, edges
    root = tensor._ctx
    fn_node(root, tensor._output_index)
    queue, seen = [root], {id(root)}
    while queue:
        fn = queue.pop(0)
        head = ids[id(fn)]
        for t in fn.inputs:
            if t._ctx is None:
                tail = leaf_node(t)
                label = _shape_text(t.shape)
            else:
                creator = t._ctx
                tail = fn_node(creator)
                label = _shape_text(t.shape)
                if len(creator.output_meta) > 1:
                    label = f"[{t._output_index}] {label}"
                if id(creator) not in seen:
                    seen.add(id(creator))
                    queue.append(creator)
            edges.append((tail, head, label))
    return nodes, edges


def _plain_source(nodes, edges, graph_attrs, node_attrs) -> str:
    """DOT text without the graphviz package (attributes quoted the same way)."""

    def attrs_text(attrs):
        return " ".join(f'{k}="{v}"' for k, v in attrs.items())

    lines = ["digraph minivae {"]
    lines.append(f"\tgraph [{attrs_text(graph_attrs)}]")
    lines.append(f"\tnode [{attrs_text(node_attrs)}]")
    for node, label, attrs in nodes:
        lines.append(f'\t{node} [label="{label}" {attrs_text(attrs)}]')
    for tail, head, label in edges:
        lines.append(f'\t{tail} -> {head} [label="{_escape(label)}"]')
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_source(tensor, names=None, params=None, use_graphviz: bool | None = None) -> str:
    """The DOT text of the graph behind ``tensor`` (see :func:`draw_graph` for the arguments)."""
    nodes, edges = _collect(tensor, _name_map(names, params))
    graph_attrs = {"rankdir": "BT"}
    node_attrs = {"fontname": "Helvetica", "fontsize": "10"}
    graphviz = _graphviz_module() if use_graphviz in (None, True) else None
    if use_graphviz and graphviz is None:
        raise ImportError("draw_graph(use_graphviz=True) needs the graphviz package: pip install graphviz")
    if graphviz is None:
        return _plain_source(nodes, edges, graph_attrs, node_attrs)
    dot = graphviz.Digraph("minivae", graph_attr=graph_attrs, node_attr=node_attrs)
    for node, label, attrs in nodes:
        dot.node(node, label=label, **attrs)
    for tail, head, label in edges:
        dot.edge(tail, head, label=_escape(label))
    return dot.source


def _output_path(path: str, fmt: str) -> tuple[str, str]:
    """(path, format): a path whose suffix names a known format keeps it and sets the format; another
    path gets ``.FORMAT`` appended."""
    root, ext = os.path.splitext(str(path))
    ext = ext.lower().lstrip(".")
    if ext in RENDER_FORMATS + TEXT_FORMATS:
        return str(path), ext
    return f"{path}.{fmt}", fmt


def draw_graph(tensor, path=None, format: str = "svg", names=None, params=None,  # noqa: A002 - graphviz's name
               use_graphviz: bool | None = None) -> GraphDrawing:
    """Draw the computation graph that produced ``tensor``.

    Args:
        tensor: a :class:`~minivae.autograd.tensor.Tensor` (typically a loss). Call it before or after
            ``backward()``; after it, the leaves' ``.grad`` and any retained ``.grad`` show their L2 norms.
            The graph is drawn from the Functions' recorded inputs and output metadata, so it can be drawn
            after a backward that freed the saved arrays.
        path: file to write (str or path-like), or None to write nothing and only return the source. A
            suffix ``.svg``, ``.png``, ``.pdf``, ``.dot`` or ``.gv`` chooses the format; any other path gets
            ``.FORMAT`` appended.
        format: "svg" (default), "png", "pdf", or "dot" for the DOT text.
        names: optional ``{tensor: "x"}`` (or ``(tensor, name)`` pairs) naming leaves or intermediate tensors.
        params: optional ``model.named_parameters()`` (``(name, Parameter)`` pairs) or ``{name: tensor}``.
        use_graphviz: build the DOT text with the graphviz package (True), with the built-in writer (False)
            or with the package when importable (None, default).
    Returns:
        :class:`GraphDrawing` with ``.source`` (DOT text), ``.path`` (the file written, or None),
        ``.format`` and ``.rendered``. In Jupyter it shows itself as an image (SVG, or PNG for
        ``format="png"``) when ``dot`` is installed, else as the DOT text with a note. When ``dot`` is not installed an image format falls back to DOT
        text in ``PATH`` with its suffix replaced by ``.dot``.
    Raises:
        ValueError: unknown format. ImportError: ``use_graphviz=True`` without the package.
        RuntimeError: ``dot`` is installed but failed (its error message is included).
        TypeError: ``tensor`` is not a Tensor.
    """
    from minivae.autograd.tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph expects a minivae Tensor, got {type(tensor).__name__}")
    fmt = str(format).lower()
    if fmt not in RENDER_FORMATS + TEXT_FORMATS:
        raise ValueError(f"draw_graph: unknown format {format!r}; use one of {RENDER_FORMATS + TEXT_FORMATS}")
    source = graph_source(tensor, names=names, params=params, use_graphviz=use_graphviz)
    if path is None:
        return GraphDrawing(source=source, path=None, format=fmt, rendered=False)
    out, fmt = _output_path(os.fspath(path), fmt)
    dot = _dot_binary() if fmt in RENDER_FORMATS else None
    if dot is None:
        if fmt in RENDER_FORMATS:  # no renderer: write the DOT text next to where the image would be
            out = os.path.splitext(out)[0] + ".dot"
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(source)
        return GraphDrawing(source=source, path=out, format="dot", rendered=False)
    _run_dot(dot, fmt, source, out)
    return GraphDrawing(source=source, path=out, format=fmt, rendered=True)


def _run_dot(dot: str, fmt: str, source: str, out: str | None = None) -> bytes:
    """Run ``dot -TFMT`` on ``source``: write ``out`` when given, else return the rendered bytes.

    Raises:
        RuntimeError: ``dot`` exited non-zero (its error message is included).
    """
    args = [dot, f"-T{fmt}"] + (["-o", out] if out is not None else [])
    proc = subprocess.run(args, input=source.encode("utf-8"), capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"draw_graph: `dot -T{fmt}` failed (exit {proc.returncode}): "
                           f"{proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout

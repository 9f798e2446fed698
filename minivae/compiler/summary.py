"""Reading a plan: :func:`summary` (a text table) and :func:`plot_memory` (live memory over the step).

FLOPs count a multiply-add as 2 (convolutions, matrix products) and one per output element for elementwise ops
(an estimate, not a measurement); bytes are what a node reads plus what it writes, from the slots' shapes and
dtypes. Memory is the bytes of the arrays a replay holds alive at each node: the step's inputs and parameters
are not counted (they exist before and after the step), every array a node makes is, from the node that makes
it to the last node that reads it (the stored gradients and the outputs to the end).
"""
from __future__ import annotations

import numpy as np

from minivae.compiler.record import GradNode, OpNode, StepNode


def _n(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def flops(plan, node) -> int:
    """Estimated floating-point operations of one node (see the module docstring)."""
    ins = [plan.meta[s][0] for s in node.ins]
    outs = [plan.meta[s][0] for s in node.outs]
    name = node.name
    if isinstance(node, StepNode):
        return 12 * sum(_n(s) for s in ins)  # about a dozen operations per element for Adam
    if not isinstance(node, OpNode):
        return sum(_n(s) for s in outs)
    if name == "Conv2d":  # y (N, Co, Ho, Wo) from w (Co, Ci, kh, kw)
        return 2 * _n(outs[0]) * _n(ins[1][1:])
    if name == "ConvTranspose2d":  # x (N, Ci, H, W), w (Ci, Co, kh, kw)
        return 2 * _n(ins[0]) * _n(ins[1][1:])
    if name == "Conv2dWeightGrad":  # gy (N, Co, Ho, Wo), x, gw (Co, Ci, kh, kw)
        return 2 * _n(ins[0]) * _n(outs[0][1:])
    if name == "ConvTranspose2dGrads":  # gy, x (N, Ci, H, W), w (Ci, Co, kh, kw): gx and gw
        return 4 * _n(ins[1]) * _n(ins[2][1:])
    if name == "Linear":
        return 2 * _n(outs[0]) * ins[1][1]
    if name == "LinearBackward":  # gy (N, out), x (N, in): gx and gw
        return 4 * _n(ins[0]) * ins[1][-1]
    if name == "MatMul" and len(ins) == 2 and len(ins[0]) >= 1:
        return 2 * _n(outs[0]) * ins[0][-1]
    return max([_n(s) for s in outs] + [_n(s) for s in ins[:1]] + [0])


def node_bytes(plan, node) -> int:
    """Bytes a node reads and writes (its input and output slots)."""
    return sum(plan.nbytes(s) for s in node.ins + node.outs)


def memory_profile(plan):
    """``(labels, live_bytes)``: per node, its name and the bytes alive while it runs (module docstring)."""
    live = np.zeros(len(plan.nodes) + 1, dtype=np.int64)
    for s, (first, last) in plan.lifetimes().items():
        if plan.sources[s][0] != "node" or first < 0:
            continue
        live[first:min(last, len(plan.nodes) - 1) + 1] += plan.nbytes(s)
    return [n.name for n in plan.nodes], live[:len(plan.nodes)]


def backward_start(plan) -> int | None:
    """The index of the first node of the backward pass (the first VJP op), or None."""
    for k, n in enumerate(plan.nodes):
        if isinstance(n, GradNode) or "Backward" in n.name or n.name.endswith("Grad") or n.name.endswith("Grads"):
            return k
    return None


def _shapes(plan, slots, limit: int = 3) -> str:
    text = ", ".join("x".join(map(str, plan.meta[s][0])) or "()" for s in slots[:limit])
    return text + (f", ... ({len(slots)} arrays)" if len(slots) > limit else "")


def _mib(b) -> str:
    return f"{b / 2**20:.2f}"


def summary(plan) -> str:
    """The plan as text: one row per call (op, input and output shapes, MFLOP, KiB moved, fusions), then the
    arrays the step makes (size, lifetime, buffer), then totals and the peak memory."""
    rows = [("#", "call", "inputs", "outputs", "MFLOP", "KiB", "fused")]
    total_flops = 0
    for k, node in enumerate(plan.nodes):
        f = flops(plan, node)
        total_flops += f
        rows.append((str(k), node.name, _shapes(plan, node.ins), _shapes(plan, node.outs), f"{f / 1e6:.3f}",
                     f"{node_bytes(plan, node) / 1024:.1f}", "+".join(node.fused)))
    lines = [f"plan {plan.label}: {len(plan.nodes)} calls, passes: {', '.join(plan.passes) or 'none'}; fusions: "
             + (", ".join(f"{name} x{count}" for name, count in plan.fusions.items()) or "none"),
             f"the recorded step read {plan.host_reads} value(s) back to Python (.item()); the plan does not "
             "repeat what Python did with them" if plan.host_reads else "", ""]
    lines += _table(rows, right={0, 4, 5})
    labels, live = memory_profile(plan)
    lifetimes = plan.lifetimes()
    made = sorted((s for s, (first, _) in lifetimes.items() if plan.sources[s][0] == "node" and first >= 0),
                  key=lambda s: (lifetimes[s][0], s))
    arr_rows = [("slot", "shape", "dtype", "KiB", "made by", "last read by", "buffer")]
    end = len(plan.nodes)
    for s in made:
        first, last = lifetimes[s]
        arr_rows.append((str(s), "x".join(map(str, plan.meta[s][0])) or "()", str(plan.meta[s][1]),
                         f"{plan.nbytes(s) / 1024:.1f}", f"{first} {plan.nodes[first].name}",
                         "end (kept)" if last >= end else f"{last} {plan.nodes[last].name}",
                         f"#{plan.planned_buffer[s]}" if s in plan.planned else "own"))
    lines += ["", "arrays made by the step:"] + _table(arr_rows, right={0, 3})
    peak = int(live.max()) if len(live) else 0
    at = int(live.argmax()) if len(live) else 0
    planned = sum(plan.buffers)
    lines += ["", f"total: {total_flops / 1e6:.1f} MFLOP; peak live memory {_mib(peak)} MiB at call {at} "
              f"({labels[at] if labels else '-'}); memory planner: {len(plan.buffers)} buffers, {_mib(planned)} MiB "
              f"for {len(plan.planned)} arrays ({_mib(sum(plan.nbytes(s) for s in plan.planned))} MiB without reuse)"]
    return "\n".join(line for line in lines if line is not None)


def _table(rows, right=()) -> list:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]

    def fmt(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return [fmt(rows[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows[1:]]


def plot_memory(plan, ax=None, path=None):
    """Draw the live memory (MiB) over the step's calls: activations rise through the forward and fall through
    the backward, as the VJPs release what the forward kept. Marks where the backward starts and the peak.

    Args:
        ax: a Matplotlib Axes to draw on (default: a new figure).
        path: save the figure there (PNG, SVG, ... by extension) when given.
    Returns:
        the Matplotlib Figure.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 3.5))
    else:
        fig = ax.figure
    labels, live = memory_profile(plan)
    x = np.arange(len(live))
    ax.step(x, live / 2**20, where="mid", color="tab:blue", label="live arrays")
    ax.fill_between(x, live / 2**20, step="mid", alpha=0.25, color="tab:blue")
    b = backward_start(plan)
    if b is not None:
        ax.axvline(b - 0.5, color="tab:red", linestyle="--", label="backward starts")
    if len(live):
        k = int(live.argmax())
        ax.annotate(f"peak {live[k] / 2**20:.2f} MiB ({labels[k]})", (k, live[k] / 2**20), xytext=(5, 5),
                    textcoords="offset points", fontsize=8)
    if plan.buffers:
        ax.axhline(sum(plan.buffers) / 2**20, color="tab:green", linestyle=":", label="planner's buffers")
    ax.set_xlabel("call of the plan (forward, backward, optimizer)")
    ax.set_ylabel("MiB")
    ax.set_title(f"memory over one step: {plan.label}")
    ax.legend(loc="upper right", fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig

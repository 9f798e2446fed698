"""The fused Adam step of :class:`minivae.optim.Adam` on the GPU: every parameter and both moments live in
three flat device buffers, and a step is one gradient concatenation plus one kernel launch
(:func:`minivae.kernels.gpu.fused_adam_step`) instead of about ten array operations per parameter.

:class:`FlatAdam` owns the buffers. Each parameter's ``data`` becomes a view into the parameter buffer and
its ``exp_avg``/``exp_avg_sq`` state (``state["m"]``, ``state["v"]``) views into the moment buffers, so
``state_dict`` and in-place writes keep working unchanged. Whenever a parameter's ``data`` or a state array
was replaced by another array (``Module.to``, ``load_state_dict``, a user's assignment), :meth:`matches`
is false and the optimizer builds new buffers from the current arrays.
"""
from __future__ import annotations

import numpy as np

from minivae import backend


class FlatAdam:
    """Flat buffers for the parameters ``params`` (one device, one floating dtype) and their Adam state.

    Args:
        params: the optimizer's Tensors; their ``data`` is copied into the buffer and rebound to views.
        states: the optimizer's per-parameter state dicts; existing ``m``/``v`` arrays are copied in and
            rebound to views, empty states stay empty until the parameter's first step.
        xp: the array module of the parameters (CuPy; NumPy under the CUDA simulator).
    """

    def __init__(self, params, states, xp):
        self.xp = xp
        self.dtype = np.dtype(params[0].dtype)
        sizes = [p.numel() for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.param = xp.empty(total, dtype=self.dtype)
        self.exp_avg = xp.zeros(total, dtype=self.dtype)
        self.exp_avg_sq = xp.zeros(total, dtype=self.dtype)
        self.param_views, self.m_views, self.v_views = [], [], []
        device = backend.device_of(self.param)
        for i, p in enumerate(params):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            shape = p.shape
            self.param[lo:hi] = p.data.reshape(-1)
            p.data = self.param[lo:hi].reshape(shape)
            self.param_views.append(p.data)
            self.m_views.append(self.exp_avg[lo:hi].reshape(shape))
            self.v_views.append(self.exp_avg_sq[lo:hi].reshape(shape))
            st = states[i]
            for key, view in (("m", self.m_views[i]), ("v", self.v_views[i])):
                if key in st:
                    view[...] = backend.to_device(st[key], device)
                    st[key] = view
        self._segments: dict = {}  # tuple of updated parameter indices -> (device segments, max length)
        self.hyper_key = None
        self.hyper = None

    def matches(self, params, states) -> bool:
        """True while every parameter's data and every existing moment array is still this object's view."""
        for p, st, pv, mv, vv in zip(params, states, self.param_views, self.m_views, self.v_views):
            if p.data is not pv or (st and (st.get("m") is not mv or st.get("v") is not vv)):
                return False
        return True

    def step(self, params, states, lr: float, betas, eps: float, weight_decay: float) -> None:
        """One Adam step of the parameters that have a gradient (each with its own step count)."""
        from minivae.kernels import gpu

        xp = self.xp
        active = [i for i, p in enumerate(params) if p.grad is not None]
        if not active:
            return
        b1, b2 = betas
        coef = np.empty((len(active), 2), dtype=np.float64)
        for row, i in enumerate(active):
            st = states[i]
            if not st:  # first step of this parameter: moments start at zero
                self.m_views[i][...] = 0
                self.v_views[i][...] = 0
                st.update(m=self.m_views[i], v=self.v_views[i], step=0)
            st["step"] += 1
            t = st["step"]
            coef[row] = (lr / (1 - b1 ** t), 1 - b2 ** t)  # Python floats, as adam.py, then the dtype
        grads = [params[i].grad.data.reshape(-1) for i in active]
        grad = xp.concatenate(grads).astype(self.dtype, copy=False) if len(grads) > 1 else \
            xp.ascontiguousarray(grads[0], dtype=self.dtype)
        segments, max_len = self._segments_for(tuple(active))
        hyper_key = (b1, b2, eps, weight_decay)
        if hyper_key != self.hyper_key:
            self.hyper = xp.asarray(np.array([b1, b2, 1 - b1, 1 - b2, weight_decay, eps], dtype=self.dtype))
            self.hyper_key = hyper_key
        gpu.fused_adam_step(self.param, grad, self.exp_avg, self.exp_avg_sq, segments,
                            xp.asarray(coef.astype(self.dtype)), self.hyper, max_len)

    def _segments_for(self, active: tuple):
        cached = self._segments.get(active)
        if cached is None:
            seg = np.empty((len(active), 3), dtype=np.int64)
            g = 0
            for row, i in enumerate(active):
                lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
                seg[row] = (lo, hi, g)
                g += hi - lo
            max_len = int((seg[:, 1] - seg[:, 0]).max())
            cached = self._segments[active] = (self.xp.asarray(seg), max_len)
        return cached

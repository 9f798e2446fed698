"""Layers with PyTorch's names, arguments and weight layouts."""
from __future__ import annotations

import numbers

import numpy as np

from minivae import functional as F
from minivae.nn import init
from minivae.nn.module import Module
from minivae.nn.parameter import Parameter


def _init_weight(shape, method: str, dtype, rng):
    try:
        fn = init.INITIALISERS[method]
    except KeyError:
        raise ValueError(f"unknown initialiser {method!r}; choose from {sorted(init.INITIALISERS)}") from None
    return fn(shape, dtype=dtype, rng=rng)


class Linear(Module):
    """``y = x W^T + b``; W ``(out_features, in_features)``, b ``(out_features,)``.

    Initialised as PyTorch (``init="kaiming_uniform"``) or Keras (``init="glorot_uniform"``, zero bias).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32,
                 init_method: str = "kaiming_uniform", rng=None):
        super().__init__()
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self.weight = Parameter(_init_weight(shape, init_method, dtype, rng))
        self.bias = None
        if bias:
            b = init.bias_uniform(shape, out_features, dtype, rng) if init_method == "kaiming_uniform" \
                else np.zeros(out_features, dtype)
            self.bias = Parameter(b)

    def forward(self, x):
        """``x @ weight.T + bias`` for ``x`` of shape ``(*, in_features)``."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        """The layer's settings as ``repr`` shows them."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    def __init__(self, weight_shape, out_channels, stride, padding, bias, dtype, init_method, rng):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight = Parameter(_init_weight(weight_shape, init_method, dtype, rng))
        self.bias = None
        if bias:
            b = init.bias_uniform(weight_shape, out_channels, dtype, rng) if init_method == "kaiming_uniform" \
                else np.zeros(out_channels, dtype)
            self.bias = Parameter(b)


def _check_sizes(layer: str, **sizes) -> None:
    """Each size (an int or a tuple of ints) is a positive int: a zero would divide by zero in the init."""
    for name, v in sizes.items():
        values = v if isinstance(v, tuple) else (v,)
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in values):
            what = "positive ints" if isinstance(v, tuple) else "a positive int"
            raise ValueError(f"{layer}: {name} must be {what}, got {v!r}")


def _pair(v):
    """An int (Python or NumPy) as ``(v, v)``; a pair as a tuple. NumPy integers become Python ints."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return (int(v), int(v))
    return tuple(int(n) if isinstance(n, numbers.Integral) and not isinstance(n, bool) else n for n in v)


class Conv2d(_ConvNd):
    """2-D convolution over NCHW input; weight ``(out_channels, in_channels, kH, kW)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 dtype=np.float32, init_method: str = "kaiming_uniform", rng=None):
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, _pair(kernel_size)
        _check_sizes("Conv2d", in_channels=in_channels, out_channels=out_channels, kernel_size=self.kernel_size)
        super().__init__((out_channels, in_channels) + self.kernel_size, out_channels, stride, padding, bias,
                         dtype, init_method, rng)

    def forward(self, x):
        """``conv2d(x, weight, bias, stride, padding)`` of an NCHW input."""
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        """The layer's settings as ``repr`` shows them."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution over NCHW input; weight ``(in_channels, out_channels, kH, kW)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 bias: bool = True, dtype=np.float32, init_method: str = "kaiming_uniform", rng=None):
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, _pair(kernel_size)
        _check_sizes("ConvTranspose2d", in_channels=in_channels, out_channels=out_channels,
                     kernel_size=self.kernel_size)
        self.output_padding = output_padding
        super().__init__((in_channels, out_channels) + self.kernel_size, out_channels, stride, padding, bias,
                         dtype, init_method, rng)

    def forward(self, x):
        """``conv_transpose2d(x, weight, bias, stride, padding, output_padding)`` of an NCHW input."""
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                  output_padding=self.output_padding)

    def extra_repr(self) -> str:
        """The layer's settings as ``repr`` shows them."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}")


class ReLU(Module):
    def forward(self, x):
        """``max(x, 0)`` elementwise."""
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        """``1 / (1 + exp(-x))`` elementwise."""
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        """``tanh(x)`` elementwise."""
        return F.tanh(x)


class Flatten(Module):
    """``(N, d1, d2, ...) -> (N, d1*d2*...)`` (``start_dim=1`` as PyTorch's default)."""

    def forward(self, x):
        """The input flattened from ``start_dim`` to the last dim."""
        return F.reshape(x, (x.shape[0], -1))


class Unflatten(Module):
    """Reshape dimension ``dim`` into ``unflattened_size``, e.g. ``Unflatten(1, (32, 7, 7))``."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        """The input's dim ``dim`` split into ``unflattened_size``."""
        shape = x.shape
        d = self.dim % len(shape)
        return F.reshape(x, shape[:d] + self.unflattened_size + shape[d + 1:])

    def extra_repr(self) -> str:
        """The layer's settings as ``repr`` shows them."""
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Sequential(Module):
    """Modules applied in order; registered as attributes ``"0"``, ``"1"``, ... as in PyTorch."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __iter__(self):
        return iter(self.children())

    def __len__(self) -> int:
        return len(list(self.children()))

    def __getitem__(self, i: int) -> Module:
        return list(self.children())[i]

    def forward(self, x):
        """The input passed through each layer in order."""
        for m in self.children():
            x = m(x)
        return x

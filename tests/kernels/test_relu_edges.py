"""ReLU's kernels at the edges, on every CPU kernel set and the GPU kernels (CUDA simulator), against PyTorch:
0-d tensors keep their shape, NaN and infinities, ties at 0, and the gradient at a NaN input (PyTorch's
``threshold_backward`` passes ``gy`` where the output is NaN: ``gx = 0 if y <= 0 else gy``)."""
from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
import minivae.functional as F
from minivae import kernels

SETS = ["reference", "numba"]
X = [np.nan, -1.5, -0.0, 0.0, 2.0, np.inf, -np.inf, 3.0]
GY = [1.0, 2.0, 3.0, np.nan, 5.0, 6.0, np.nan, np.nan]


def _relu_and_grad(x, gy, impl):
    with kernels.use(impl):
        t = mv.Tensor(x, requires_grad=True)
        y = F.relu(t)
        y.backward(mv.Tensor(gy))
    return y.data, t.grad.data


def _torch_relu_and_grad(x, gy):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    y = torch.relu(t)
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("impl", SETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_value_and_gradient_match_torch_bit_for_bit(impl, dtype):
    x, gy = np.array(X, dtype), np.array(GY, dtype)
    y, gx = _relu_and_grad(x, gy, impl)
    ty, tgx = _torch_relu_and_grad(x, gy)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(gx, tgx)
    assert gx[0] == 1.0  # NaN input: the gradient passes (closed form, also without torch)
    assert gx[3] == 0.0 and gx[6] == 0.0  # a NaN gradient where y <= 0 gives 0


@pytest.mark.parametrize("impl", SETS)
@pytest.mark.parametrize("value", [3.0, -2.0, np.nan])
def test_relu_of_a_0d_tensor_keeps_its_shape_and_backward_runs(impl, value):
    x = np.array(value, np.float32)
    y, gx = _relu_and_grad(x, np.array(4.0, np.float32), impl)
    assert y.shape == () and gx.shape == () and gx.dtype == np.float32
    ty, tgx = _torch_relu_and_grad(x, np.array(4.0, np.float32))
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(gx, tgx)


def test_gpu_relu_kernels_at_nan_match_the_reference():
    """The CUDA kernels (run by the simulator here, on the device with MINIVAE_REAL_GPU=1)."""
    from minivae.kernels import gpu, reference

    if not gpu.simulated():
        pytest.skip("needs the CUDA simulator (the device run is tests/test_gpu_device.py)")
    x, gy = np.array(X, np.float32), np.array(GY, np.float32)
    y = gpu.relu_forward(x)
    np.testing.assert_array_equal(y, reference.relu_forward(x))
    np.testing.assert_array_equal(gpu.relu_backward(gy, y), reference.relu_backward(gy, y))

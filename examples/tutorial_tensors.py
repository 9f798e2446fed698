"""PyTorch's "Tensors" tutorial (Learn the Basics, ``tensorqs_tutorial.py``) with ``torch`` replaced by ``minivae``.

Run it: ``python examples/tutorial_tensors.py``. ``tests/oracle/test_oracle_tutorials.py`` runs this file twice,
once as it is and once with ``import torch as minivae``, and checks that minivae prints PyTorch's numbers.

Where the port differs from the tutorial (each line says so too):

* no accelerator section (minivae's GPU is ``device="gpu"``, see the README);
* ``torch.matmul(..., out=y3)`` and ``torch.mul(..., out=z3)``: minivae has no ``out=`` arguments, so the
  results are assigned (``y3 = minivae.matmul(...)``);
* printed tensors: minivae's repr always names the dtype (``dtype=float32``) and shapes are tuples
  (``(3, 4)``, PyTorch: ``torch.Size([3, 4])``); the numbers are the same.
"""
import numpy as np

import minivae

# Initializing a Tensor: directly from data (the data type is inferred)
data = [[1, 2], [3, 4]]
x_data = minivae.tensor(data)

# from a NumPy array (sharing its memory)
np_array = np.array(data)
x_np = minivae.from_numpy(np_array)

# from another tensor: the new tensor keeps the shape and dtype of the argument unless overridden
x_ones = minivae.ones_like(x_data)  # retains the properties of x_data
print(f"Ones Tensor: \n {x_ones} \n")

x_rand = minivae.rand_like(x_data, dtype=minivae.float)  # overrides the datatype of x_data
print(f"Random Tensor: \n {x_rand} \n")

# with random or constant values; shape is a tuple of dimensions
shape = (2, 3,)
rand_tensor = minivae.rand(shape)
ones_tensor = minivae.ones(shape)
zeros_tensor = minivae.zeros(shape)

print(f"Random Tensor: \n {rand_tensor} \n")
print(f"Ones Tensor: \n {ones_tensor} \n")
print(f"Zeros Tensor: \n {zeros_tensor}")

# Attributes of a Tensor
tensor = minivae.rand(3, 4)

print(f"Shape of tensor: {tensor.shape}")
print(f"Datatype of tensor: {tensor.dtype}")
print(f"Device tensor is stored on: {tensor.device}")

# Operations on Tensors (the tutorial first moves the tensor to an accelerator if there is one: left out)

# Standard numpy-like indexing and slicing
tensor = minivae.ones(4, 4)
print(f"First row: {tensor[0]}")
print(f"First column: {tensor[:, 0]}")
print(f"Last column: {tensor[..., -1]}")
tensor[:, 1] = 0
print(tensor)

# Joining tensors
t1 = minivae.cat([tensor, tensor, tensor], dim=1)
print(t1)

# Arithmetic operations: the matrix product; y1, y2, y3 have the same value (``tensor.T`` is the transpose)
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)

y3 = minivae.rand_like(y1)
y3 = minivae.matmul(tensor, tensor.T)  # PyTorch: torch.matmul(tensor, tensor.T, out=y3) (minivae has no out=)

# the element-wise product; z1, z2, z3 have the same value
z1 = tensor * tensor
z2 = tensor.mul(tensor)

z3 = minivae.rand_like(tensor)
z3 = minivae.mul(tensor, tensor)  # PyTorch: torch.mul(tensor, tensor, out=z3)

# Single-element tensors: .item() converts to a Python number
agg = tensor.sum()
agg_item = agg.item()
print(agg_item, type(agg_item))

# In-place operations have a _ suffix
print(f"{tensor} \n")
tensor.add_(5)
print(tensor)

# Bridge with NumPy: a CPU tensor and its NumPy array share memory, so a change in one shows in the other
t = minivae.ones(5)
print(f"t: {t}")
n = t.numpy()
print(f"n: {n}")

t.add_(1)
print(f"t: {t}")
print(f"n: {n}")

# NumPy array to Tensor
n = np.ones(5)
t = minivae.from_numpy(n)

np.add(n, 1, out=n)
print(f"t: {t}")
print(f"n: {n}")

"""PyTorch's autograd tutorials with ``torch`` replaced by ``minivae``: "A Gentle Introduction to torch.autograd"
(the 60-minute blitz, ``autograd_tutorial.py``) and "Automatic Differentiation with torch.autograd" (Learn the
Basics, ``autogradqs_tutorial.py``).

Run it: ``python examples/tutorial_autograd.py``. ``tests/oracle/test_oracle_tutorials.py`` runs this file twice,
once as it is and once with ``import torch as minivae``, and checks that minivae prints PyTorch's numbers.

Where the port differs from the tutorials (each line says so too):

* ``torch.nn.functional`` is imported as ``minivae.functional`` (minivae's place for it);
* torchvision's pretrained ``resnet18`` is replaced by a small convolutional network of the same interface
  (64x64 RGB images in, 1000 scores out, the last layer called ``fc``): minivae has no model zoo;
* printed tensors: minivae's repr names the dtype and prints ``requires_grad=True`` without a ``grad_fn``; a
  ``grad_fn`` prints as minivae's Function (``<Add ...>``, PyTorch: ``<AddBackward0 ...>``).
"""
import minivae
import minivae.functional as F  # PyTorch: torch.nn.functional (minivae keeps it at minivae.functional)
from minivae import nn, optim

# --------------------------------------------------------------------- A Gentle Introduction to torch.autograd


class SmallNet(nn.Module):
    """Stands in for resnet18: ``(N, 3, 64, 64)`` images to ``(N, 1000)`` scores; the classifier is ``fc``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.fc = nn.Linear(8 * 16 * 16, 1000)

    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))


# Usage in PyTorch: one training step
model = SmallNet()  # PyTorch's tutorial: resnet18(weights=ResNet18_Weights.DEFAULT)
data = minivae.rand(1, 3, 64, 64)
labels = minivae.rand(1, 1000)

prediction = model(data)  # forward pass
loss = (prediction - labels).sum()
loss.backward()  # backward pass

optim_ = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
optim_.step()  # gradient descent

# Differentiation in Autograd
a = minivae.tensor([2., 3.], requires_grad=True)
b = minivae.tensor([6., 4.], requires_grad=True)

Q = 3 * a ** 3 - b ** 2

# Q is a vector: backward needs the gradient of some scalar with respect to Q (here dQ/dQ = 1)
external_grad = minivae.tensor([1., 1.])
Q.backward(gradient=external_grad)

# check if collected gradients are correct
print(9 * a ** 2 == a.grad)
print(-2 * b == b.grad)

# Exclusion from the DAG
x = minivae.rand(5, 5)
y = minivae.rand(5, 5)
z = minivae.rand((5, 5), requires_grad=True)

a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

# Freezing parameters: fine-tune only the classifier
model = SmallNet()  # PyTorch's tutorial: resnet18(weights=ResNet18_Weights.DEFAULT)

# Freeze all the parameters in the network
for param in model.parameters():
    param.requires_grad = False

model.fc = nn.Linear(8 * 16 * 16, 10)  # PyTorch's tutorial: nn.Linear(512, 10)

# Optimize only the classifier
optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)

# ------------------------------------------------------- Automatic Differentiation with torch.autograd

x = minivae.ones(5)  # input tensor
y = minivae.zeros(3)  # expected output
w = minivae.randn(5, 3, requires_grad=True)
b = minivae.randn(3, requires_grad=True)
z = minivae.matmul(x, w) + b
loss = F.binary_cross_entropy_with_logits(z, y)  # PyTorch: torch.nn.functional.binary_cross_entropy_with_logits

print(f"Gradient function for z = {z.grad_fn}")
print(f"Gradient function for loss = {loss.grad_fn}")

# Computing gradients
loss.backward()
print(w.grad)
print(b.grad)

# Disabling gradient tracking
z = minivae.matmul(x, w) + b
print(z.requires_grad)

with minivae.no_grad():
    z = minivae.matmul(x, w) + b
print(z.requires_grad)

z = minivae.matmul(x, w) + b
z_det = z.detach()
print(z_det.requires_grad)

# Optional reading: tensor gradients and Jacobian products
inp = minivae.eye(4, 5, requires_grad=True)
out = (inp + 1).pow(2).t()
out.backward(minivae.ones_like(out), retain_graph=True)
print(f"First call\n{inp.grad}")
out.backward(minivae.ones_like(out), retain_graph=True)
print(f"\nSecond call\n{inp.grad}")
inp.grad.zero_()
out.backward(minivae.ones_like(out), retain_graph=True)
print(f"\nCall after zeroing gradients\n{inp.grad}")

"""Neural-network building blocks: ``Module``, ``Parameter``, layers and initialisers (PyTorch's names)."""
from minivae.nn import init
from minivae.nn.layers import (Conv2d, ConvTranspose2d, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh,
                               Unflatten)
from minivae.nn.module import Module, StateDictError
from minivae.nn.parameter import Parameter

__all__ = ["init", "Conv2d", "ConvTranspose2d", "Flatten", "Linear", "ReLU", "Sequential", "Sigmoid", "Tanh",
           "Unflatten", "Module", "StateDictError", "Parameter"]

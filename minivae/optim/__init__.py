"""Optimizers with PyTorch's names and defaults: ``SGD`` (momentum, Nesterov), ``Adam`` (amsgrad), ``AdamW``,
``RMSprop`` (momentum, centered), with ``zero_grad``/``step``/``state_dict``."""
from minivae.optim.adam import Adam, AdamW
from minivae.optim.optimizer import Optimizer
from minivae.optim.sgd import SGD, RMSprop

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "RMSprop"]

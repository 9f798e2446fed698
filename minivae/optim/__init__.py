"""Optimizers: ``SGD`` (momentum), ``Adam``, ``RMSprop``, with ``zero_grad``/``step``/``state_dict``."""
from minivae.optim.adam import Adam
from minivae.optim.optimizer import Optimizer
from minivae.optim.sgd import SGD, RMSprop

__all__ = ["Adam", "Optimizer", "SGD", "RMSprop"]

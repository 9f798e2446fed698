"""A recording ("spy") kernel set for tests: every kernel of the reference set, each call logged in ``CALLS``."""
from minivae.kernels import KERNELS
from minivae.kernels import reference as _ref

CALLS: list = []


def _spy(name):
    real = getattr(_ref, name)

    def kernel(*args, **kwargs):
        CALLS.append(name)
        return real(*args, **kwargs)

    kernel.__name__ = name
    return kernel


for _name in KERNELS:
    globals()[_name] = _spy(_name)

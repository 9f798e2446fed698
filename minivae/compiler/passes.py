"""Passes over a captured :class:`~minivae.compiler.plan.Plan`, each switchable off with
``compile(fn, passes={"name": False})``.
"""
from __future__ import annotations

DEFAULTS = {"epilogue": True, "memory": True, "adam": True}


def run(plan, options: dict) -> None:
    """Apply the passes that are on, in order, then rebuild the plan's calls."""
    plan.passes = [name for name, on in options.items() if on]
    plan.build()

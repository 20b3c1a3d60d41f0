"""The trainer's side of the variant declarations: objectives bound.

`fairser_jax.variants` declares every variant as data (no JAX); this
module resolves what a declaration names for training: its objective
function and the objective state of a run before its first step. The
declaration API (`Variant`, `REGISTRY`, `get`, `training_order`, ...) is
re-exported so that `fairser_jax.train.variants` keeps working.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from fairser_jax.train import alpha as alpha_lib
from fairser_jax.train import objectives
from fairser_jax.variants import (  # noqa: F401 (re-exported)
    REGISTRY,
    Variant,
    display_name,
    get,
    in_table,
    names,
    register,
    training_order,
    unregister,
)
from fairser_jax.variants import validate as _validate_declared

PyTree = Any


def objective(spec: Variant) -> objectives.Objective:
    """The `objectives.Objective` a declaration names (or holds)."""
    if callable(spec.objective):
        return spec.objective
    try:
        return objectives.OBJECTIVES[spec.objective]
    except KeyError:
        raise ValueError(
            f"variant {spec.name!r} names objective {spec.objective!r}; the "
            f"built-in ones are {sorted(objectives.OBJECTIVES)} (or pass the "
            "function itself)."
        ) from None


def init_state(spec: Variant, cfg: ml_collections.ConfigDict) -> PyTree:
    """The objective state of one run before its first step ({} if none)."""
    if spec.init_state is None:
        return {}
    if callable(spec.init_state):
        return spec.init_state(cfg)
    try:
        make = objectives.INIT_STATES[spec.init_state]
    except KeyError:
        raise ValueError(
            f"variant {spec.name!r} names init_state {spec.init_state!r}; "
            f"the built-in ones are {sorted(objectives.INIT_STATES)}."
        ) from None
    return make(cfg)


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on variants the trainer cannot run:
    the declarations' checks, then the two-sided settings (α map, D) when
    a requested variant reads them."""
    _validate_declared(cfg)
    if any(get(v).two_sided for v in cfg.variants):
        alpha_lib.validate(cfg.two_sided)
    for v in cfg.variants:
        objective(get(v))

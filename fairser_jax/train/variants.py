"""The variant registry: every model of the paper, declared once.

A variant is what the paper trains many times over (emotion × fold × seed
[× α]): DNN and the one-sided Fair_spk / Fair_rat (§2.2, Table 2), the
two-sided Basic and Proposed (§3.1, Table 3) and the fixed-α models of
Fig. 3a, and one control of ours (`basic_anchored`: Basic's objective
from Proposed's anchor). The runner, the pipeline, config validation and
the report all read this table; adding a variant is one entry here.

Example (what Proposed is)::

    Variant(
        name="proposed", display="Proposed", table=3,
        objective=objectives.proposed,
        init_from="fair_rat",                    # the anchor of §3.1
        references=("fair_spk", "fair_rat"),     # frozen, read per batch
        init_state=lambda cfg: alpha.get(cfg.two_sided.alpha_fn).init(),
        traced=("alpha", "distance"),            # α and D of every batch
    )
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import ml_collections

from fairser_jax.train import alpha as alpha_lib
from fairser_jax.train import objectives

PyTree = Any


def _no_alpha(cfg: ml_collections.ConfigDict) -> tuple[float | None, ...]:
    del cfg
    return (None,)


def _all_emotions(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    return tuple(cfg.emotions)


def _sweep_emotions(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    return tuple(cfg.two_sided.sweep_emotions)


def _no_state(cfg: ml_collections.ConfigDict) -> PyTree:
    del cfg
    return {}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One kind of model of the paper.

    Attributes:
      name: the id used in configs, files and `results.json`.
      display: the paper's name (tables, figures).
      objective: `objectives.Objective`, what a step minimises.
      intra_fair: the side the variant is trained to be fair on (`"spk"`,
        `"rat"`, `"both"`) or None; the report marks intra-/inter-fairness
        cells with it (paper §2.2.3).
      table: the paper's table the variant belongs to (2: one-sided, 3:
        two-sided) or None (the fixed-α sweep has its own table and Fig. 3a).
      init_from: the variant whose trained parameters of the same (emotion,
        fold, seed) each run starts from, or None (random initialisation).
      references: trained variants read as frozen models during training
        (their outputs on each batch reach the objective as `ctx.refs`).
      alphas: `config -> tuple` of per-run α values; every value becomes its
        own runs inside ONE stacked set (None: the variant has no α).
      emotions: `config -> tuple` of the detectors trained (default
        `config.emotions`; the fixed-α sweep runs on
        `config.two_sided.sweep_emotions`, Anger in the paper's Fig. 3a).
      init_state: `config -> pytree`, the objective state of one run before
        its first step (e.g. the running mean of D behind α).
      traced: terms recorded for every batch (e.g. `"alpha"`), kept in the
        train state so that a resumed run has the whole trace.
    """

    name: str
    display: str
    objective: objectives.Objective
    intra_fair: str | None = None
    table: int | None = None
    init_from: str | None = None
    references: tuple[str, ...] = ()
    alphas: Callable[[ml_collections.ConfigDict], tuple[float | None, ...]] = (
        _no_alpha
    )
    emotions: Callable[[ml_collections.ConfigDict], tuple[str, ...]] = (
        _all_emotions
    )
    init_state: Callable[[ml_collections.ConfigDict], PyTree] = _no_state
    traced: tuple[str, ...] = ()

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Variants that must be trained first (anchor, then references)."""
        deps = ((self.init_from,) if self.init_from else ()) + self.references
        return tuple(dict.fromkeys(deps))


def _proposed_state(cfg: ml_collections.ConfigDict) -> PyTree:
    return alpha_lib.get(cfg.two_sided.alpha_fn).init()


def _fixed_alphas(cfg: ml_collections.ConfigDict) -> tuple[float, ...]:
    return tuple(float(a) for a in cfg.two_sided.fixed_alphas)


REGISTRY: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            name="dnn",
            display="DNN",
            objective=objectives.stateless(objectives.dnn),
            table=2,
        ),
        Variant(
            name="fair_spk",
            display="Fair_spk",
            objective=objectives.stateless(objectives.speaker_fair),
            intra_fair="spk",
            table=2,
        ),
        Variant(
            name="fair_rat",
            display="Fair_rat",
            objective=objectives.stateless(objectives.rater_fair),
            intra_fair="rat",
            table=2,
        ),
        Variant(
            name="basic",
            display="Basic",
            objective=objectives.stateless(objectives.basic),
            intra_fair="both",
            table=3,
        ),
        Variant(
            # A control the paper lacks: Basic's objective from Proposed's
            # anchor, so a gain of Proposed over Basic can be told apart
            # from the warm start (fixed α = 0.5 is the other control).
            name="basic_anchored",
            display="Basic (anchored)",
            objective=objectives.stateless(objectives.basic),
            intra_fair="both",
            table=3,
            init_from="fair_rat",
        ),
        Variant(
            name="proposed",
            display="Proposed",
            objective=objectives.proposed,
            intra_fair="both",
            table=3,
            init_from="fair_rat",
            references=("fair_spk", "fair_rat"),
            init_state=_proposed_state,
            traced=("alpha", "distance"),
        ),
        Variant(
            name="fixed_alpha",
            display="Fixed α",
            objective=objectives.fixed_alpha,
            intra_fair="both",
            init_from="fair_rat",
            alphas=_fixed_alphas,
            emotions=_sweep_emotions,
        ),
    )
}

NAMES: tuple[str, ...] = tuple(REGISTRY)
"""Every variant, in the paper's order (dependencies before dependants)."""


def get(name: str) -> Variant:
    """The registered variant `name`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown variant {name!r}; choose from {list(NAMES)}."
        ) from None


def display_name(name: str) -> str:
    """The paper's name of a variant (the id itself if unregistered)."""
    v = REGISTRY.get(name)
    return v.display if v else name


def in_table(table: int) -> tuple[str, ...]:
    """Variants of the paper's Table 2 or Table 3, in registry order."""
    return tuple(v.name for v in REGISTRY.values() if v.table == table)


def training_order(requested: Iterable[str]) -> tuple[str, ...]:
    """The requested variants plus their dependencies, dependencies first.

    Args:
      requested: variant names (e.g. `config.variants`).

    Returns:
      Every variant to train, in registry order, which puts each variant
      after the ones it initialises from or reads.
    """
    needed: set[str] = set()
    stack = list(requested)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(get(name).dependencies)
    return tuple(n for n in NAMES if n in needed)


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on variants the trainer cannot run."""
    bad = [v for v in cfg.variants if v not in REGISTRY]
    if bad:
        raise ValueError(
            f"config.variants has {bad}; choose from {list(NAMES)}."
        )
    if len(set(cfg.variants)) != len(cfg.variants):
        raise ValueError(
            f"config.variants lists a variant twice: {tuple(cfg.variants)}."
        )
    two_sided = {"proposed", "fixed_alpha"} & set(cfg.variants)
    if two_sided:
        alpha_lib.validate(cfg.two_sided)
    if "fixed_alpha" in cfg.variants:
        if not cfg.two_sided.fixed_alphas:
            raise ValueError(
                "config.variants has 'fixed_alpha' but "
                "config.two_sided.fixed_alphas is empty; list the α values "
                "of the sweep, e.g. "
                "--config.two_sided.fixed_alphas='(0.25,0.5)'."
            )
        outside = [
            e for e in cfg.two_sided.sweep_emotions if e not in cfg.emotions
        ]
        if outside or not cfg.two_sided.sweep_emotions:
            raise ValueError(
                "config.two_sided.sweep_emotions must be a non-empty subset "
                f"of config.emotions {tuple(cfg.emotions)}; got "
                f"{tuple(cfg.two_sided.sweep_emotions)}."
            )

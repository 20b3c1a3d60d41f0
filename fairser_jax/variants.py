"""The variants of the paper, declared once, as data (no JAX).

A variant is what the paper trains many times over (emotion × fold × seed
[× α]): DNN and the one-sided Fair_spk / Fair_rat (§2.2, Table 2), the
two-sided Basic and Proposed (§3.1, Table 3), the fixed-α models of
Fig. 3a, and one control of ours (`basic_anchored`: Basic's objective from
Proposed's anchor). Everything that needs to know about variants reads
this table: the trainer (`fairser_jax.train.variants` binds each
declaration's `objective` to its function), the pipeline, config
validation, `predict`'s choice of detector, and the report's tables and
figures. The report imports this module, never `fairser_jax.train`.

Adding a variant is one `register(Variant(...))` plus its objective
function (an `fairser_jax.train.objectives.Objective`)::

    variants.register(Variant(
        name="mine", display="Mine", objective=my_objective, table=2,
        intra_fair="spk", pairwise=True))

Example (what Proposed is)::

    Variant(
        name="proposed", display="Proposed", table=3,
        objective="proposed",                    # train.objectives.OBJECTIVES
        init_from="fair_rat",                    # the anchor of §3.1
        references=("fair_spk", "fair_rat"),     # frozen, read per batch
        init_state="alpha_fn",                   # the running mean of D
        traced=("alpha", "distance"),            # α and D of every batch
        two_sided=True, pairwise=True, preference=0,
    )
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ml_collections


@dataclasses.dataclass(frozen=True)
class Variant:
    """One kind of model of the paper.

    Attributes:
      name: the id used in configs, files and ``results.json``.
      display: the paper's name (tables, figures, ``predict``).
      objective: what a step minimises: the name of a built-in objective
        (a key of ``fairser_jax.train.objectives.OBJECTIVES``) or an
        `Objective` function ``(out, batch, cfg, state, ctx) -> (objective,
        terms, new_state)``.
      intra_fair: the side the variant is trained to be fair on (``"spk"``,
        ``"rat"``, ``"both"``) or None; the report marks intra-/inter-
        fairness cells with it (paper §2.2.3), and a rater-side variant
        warns when S2 has fewer than two rater groups.
      table: the paper's table the variant belongs to (2: one-sided, 3:
        two-sided) or None.
      init_from: the variant whose trained parameters of the same (emotion,
        fold, seed) each run starts from, or None (random initialisation).
      references: trained variants read as frozen models during training
        (their outputs on each batch reach the objective as ``ctx.refs``).
      sweep: one stacked set of runs per α of ``config.two_sided.
        fixed_alphas``, on ``config.two_sided.sweep_emotions`` (Fig. 3a);
        otherwise one run per (emotion, fold, seed) of ``config.emotions``.
      two_sided: the objective reads ``config.two_sided`` (α map, D), which
        is then validated.
      pairwise: the objective compares utterances within a batch (L_cl,
        L_D, the adversary's groups): a batch needs two of them, and a step
        holds [B, B] matrices (memory planning).
      init_state: the objective state of one run before its first step:
        None (no state), the name of a built-in (a key of
        ``fairser_jax.train.objectives.INIT_STATES``) or a function
        ``config -> pytree``.
      traced: terms recorded for every batch (e.g. ``"alpha"``), kept in the
        train state so that a resumed run has the whole trace.
      preference: rank as ``predict``'s default detector (0 first); None:
        never chosen by default.
      color: the variant's colour in figures that show several variants
        (None: the figure picks one).
      paper: the numbers the paper publishes for the variant: emotion ->
        metric (``f1`` in %, ``dsp_spk``, ``dsp_rat``, ``product``,
        ``gap``) -> a value or (mean, SD). Empty for variants the paper
        does not have.
    """

    name: str
    display: str
    objective: str | Callable[..., Any]
    intra_fair: str | None = None
    table: int | None = None
    init_from: str | None = None
    references: tuple[str, ...] = ()
    sweep: bool = False
    two_sided: bool = False
    pairwise: bool = False
    init_state: str | Callable[[ml_collections.ConfigDict], Any] | None = None
    traced: tuple[str, ...] = ()
    preference: int | None = None
    color: str | None = None
    paper: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Variants that must be trained first (anchor, then references)."""
        deps = ((self.init_from,) if self.init_from else ()) + self.references
        return tuple(dict.fromkeys(deps))

    def alphas(
        self, cfg: ml_collections.ConfigDict
    ) -> tuple[float | None, ...]:
        """Per-run α values: the sweep's, or (None,) for one run each."""
        if self.sweep:
            return tuple(float(a) for a in cfg.two_sided.fixed_alphas)
        return (None,)

    def emotions(self, cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
        """The detectors trained: the sweep's emotions, or config.emotions."""
        if self.sweep:
            return tuple(cfg.two_sided.sweep_emotions)
        return tuple(cfg.emotions)


# Paper Table 2: emotion -> (F1 %, ΔSP_spk, ΔSP_rat).
def _table2(rows: Mapping[str, tuple[float, float, float]]) -> dict:
    return {
        e: {"f1": f1, "dsp_spk": spk, "dsp_rat": rat}
        for e, (f1, spk, rat) in rows.items()
    }


# Paper Table 3 (ten models per cell): emotion -> F1 %, ΔSP_spk and
# ΔSP_rat as (mean, SD), the product and the gap |ΔSP_spk − ΔSP_rat|.
def _table3(rows: Iterable[tuple]) -> dict:
    return {
        e: {"f1": f1, "dsp_spk": spk, "dsp_rat": rat, "product": p, "gap": g}
        for e, f1, spk, rat, p, g in rows
    }


# fmt: off
_BUILT_IN = (
    Variant(
        name="dnn", display="DNN", objective="dnn", table=2, preference=4,
        color="#7f7f7f",
        paper=_table2({
            "neutral": (77.73, 0.452, 0.649),
            "happiness": (70.00, 0.511, 0.428),
            "anger": (76.44, 0.378, 0.389),
            "sadness": (82.28, 0.359, 0.169),
            "frustration": (63.54, 0.385, 0.626),
        }),
    ),
    Variant(
        name="fair_spk", display="Fair_spk", objective="speaker_fair",
        intra_fair="spk", table=2, pairwise=True, preference=3,
        color="#3a9a3a",
        paper=_table2({
            "neutral": (70.68, 0.226, 0.488),
            "happiness": (65.80, 0.380, 0.366),
            "anger": (73.26, 0.234, 0.379),
            "sadness": (75.50, 0.260, 0.208),
            "frustration": (63.34, 0.301, 0.550),
        }),
    ),
    Variant(
        name="fair_rat", display="Fair_rat", objective="rater_fair",
        intra_fair="rat", table=2, pairwise=True, preference=5,
        color="#e0a800",
        paper=_table2({
            "neutral": (68.80, 0.403, 0.352),
            "happiness": (65.14, 0.691, 0.126),
            "anger": (75.68, 0.372, 0.189),
            "sadness": (76.84, 0.291, 0.088),
            "frustration": (70.22, 0.411, 0.448),
        }),
    ),
    Variant(
        name="basic", display="Basic", objective="basic", intra_fair="both",
        table=3, pairwise=True, preference=1, color="#1f77b4",
        paper=_table3((
            ("neutral", (66.26, 2.277), (0.365, 0.082), (0.525, 0.039),
             0.192, 0.160),
            ("happiness", (65.37, 1.987), (0.566, 0.085), (0.311, 0.071),
             0.175, 0.255),
            ("anger", (69.70, 2.776), (0.302, 0.032), (0.257, 0.060),
             0.078, 0.060),
            ("sadness", (69.15, 2.406), (0.318, 0.045), (0.116, 0.028),
             0.037, 0.202),
            ("frustration", (66.10, 2.417), (0.347, 0.026), (0.521, 0.034),
             0.181, 0.174),
        )),
    ),
    # A control the paper lacks: Basic's objective from Proposed's anchor,
    # so a gain of Proposed over Basic can be told apart from the warm
    # start (fixed α = 0.5 is the other control).
    Variant(
        name="basic_anchored", display="Basic (anchored)", objective="basic",
        intra_fair="both", table=3, init_from="fair_rat", pairwise=True,
        preference=2, color="#9467bd",
    ),
    Variant(
        name="proposed", display="Proposed", objective="proposed",
        intra_fair="both", table=3, init_from="fair_rat",
        references=("fair_spk", "fair_rat"), init_state="alpha_fn",
        traced=("alpha", "distance"), two_sided=True, pairwise=True,
        preference=0, color="#ff7f0e",
        paper=_table3((
            ("neutral", (68.06, 1.241), (0.269, 0.025), (0.407, 0.043),
             0.109, 0.137),
            ("happiness", (67.67, 1.514), (0.359, 0.064), (0.214, 0.049),
             0.075, 0.154),
            ("anger", (73.09, 1.546), (0.254, 0.015), (0.222, 0.026),
             0.056, 0.039),
            ("sadness", (71.35, 1.119), (0.215, 0.027), (0.112, 0.014),
             0.024, 0.103),
            ("frustration", (69.20, 1.617), (0.310, 0.006), (0.406, 0.009),
             0.126, 0.096),
        )),
    ),
    Variant(
        name="fixed_alpha", display="Fixed α", objective="fixed_alpha",
        intra_fair="both", init_from="fair_rat", sweep=True, two_sided=True,
        pairwise=True, color="#8c564b",
    ),
)
# fmt: on

REGISTRY: dict[str, Variant] = {v.name: v for v in _BUILT_IN}
"""Every declared variant, in the paper's order (dependencies first)."""

BUILT_IN: tuple[str, ...] = tuple(REGISTRY)
"""The variants this package declares (what `configs/` train)."""


def register(variant: Variant) -> Variant:
    """Declares a new variant (after the others in the registry's order).

    Its dependencies must already be declared, so that registry order stays
    a training order.

    Raises:
      ValueError: the name is taken, or a dependency is not declared.
    """
    if variant.name in REGISTRY:
        raise ValueError(f"variant {variant.name!r} is already declared.")
    unknown = [d for d in variant.dependencies if d not in REGISTRY]
    if unknown:
        raise ValueError(
            f"variant {variant.name!r} depends on undeclared {unknown}."
        )
    REGISTRY[variant.name] = variant
    return variant


def unregister(name: str) -> None:
    """Removes a variant `register` added (built-in ones stay)."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is built in and cannot be removed.")
    if any(name in v.dependencies for v in REGISTRY.values()):
        raise ValueError(f"another variant depends on {name!r}.")
    REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Every declared variant, in registry (training) order."""
    return tuple(REGISTRY)


def get(name: str) -> Variant:
    """The declared variant `name`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown variant {name!r}; choose from {list(REGISTRY)}."
        ) from None


def display_name(name: str) -> str:
    """The paper's name of a variant (the id itself if undeclared)."""
    v = REGISTRY.get(name)
    return v.display if v else name


def in_table(table: int) -> tuple[str, ...]:
    """Variants of the paper's Table 2 or Table 3, in registry order."""
    return tuple(v.name for v in REGISTRY.values() if v.table == table)


def preference() -> tuple[str, ...]:
    """`predict`'s default detector: these in order, the first present."""
    ranked = [v for v in REGISTRY.values() if v.preference is not None]
    return tuple(v.name for v in sorted(ranked, key=lambda v: v.preference))


def paper_value(variant: str, emotion: str, metric: str) -> Any:
    """The paper's published number, or None where it has none."""
    v = REGISTRY.get(variant)
    return v.paper.get(emotion, {}).get(metric) if v else None


def color(name: str) -> str | None:
    """The figure colour of a variant (None if it declares none)."""
    v = REGISTRY.get(name)
    return v.color if v else None


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
    return tuple(n for n in REGISTRY if n in needed)


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on variants that cannot be trained.

    (The two-sided settings are checked by
    `fairser_jax.train.variants.validate`, which also calls this.)
    """
    if not cfg.variants:
        raise ValueError(
            f"config.variants is empty; list the models to train, from "
            f"{list(REGISTRY)} (e.g. --config.variants=\"('dnn','fair_spk')\")."
        )
    bad = [v for v in cfg.variants if v not in REGISTRY]
    if bad:
        hint = (
            " A tuple is written --config.variants=\"('dnn','fair_spk')\" "
            "(a bare a,b is one name)."
            if any("," in str(v) for v in bad)
            else ""
        )
        raise ValueError(
            f"config.variants has {bad}; choose from {list(REGISTRY)}.{hint}"
        )
    if len(set(cfg.variants)) != len(cfg.variants):
        raise ValueError(
            f"config.variants lists a variant twice: {tuple(cfg.variants)}."
        )
    for name in cfg.variants:
        if not get(name).sweep:
            continue
        if not cfg.two_sided.fixed_alphas:
            raise ValueError(
                f"config.variants has {name!r} but "
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

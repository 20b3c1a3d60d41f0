r"""Training throughput of the Fair_spk step: JAX runner vs PyTorch (issue 5).

    python benchmarks/train_throughput.py            # full table, ~5 min
    python benchmarks/train_throughput.py --quick    # 1/8/64 runs, ~2 min

Measures the project's real trainer (`runner.make_epoch_fn`: `vmap` over
runs of a `lax.scan` over steps) on the Fair_spk objective of eq. (2),
L_S − L_cl + λ_S L_D-S, with the default config (batch 32, dropout 0.2,
AdamW lr 1e-3 / decay 1e-3, debiased Sinkhorn divergence with
`config.loss.sinkhorn_iterations` log-domain iterations, ε = 0.1), on an
IEMOCAP-sized synthetic S1 table (7362 utterances, 768-d features, the
paper's class counts, five sessions, 58.7 % in S2).

The same workload is written in idiomatic PyTorch two ways, with equal work:

- sequential: a `torch.nn` model of the same architecture and
  `torch.optim.AdamW`, one run after another;
- `torch.func`: all runs at once (`stack_module_state` + `functional_call` +
  `vmap(grad_and_value)`) and a hand-written AdamW over the stacked params.

Both use the same supervised contrastive loss and the same debiased Sinkhorn
divergence as `fairser_jax.losses` (ott-jax's log-domain updates from zero
potentials: alternating updates for OT(x, y); averaged parallel updates for
the symmetric OT(x, x), OT(y, y)); the script first checks that the torch
loss and its gradient equal the JAX ones on the same weights and batch.

Every case runs in its own subprocess (clean memory and thread pools) that
reports its peak RSS. JAX rates exclude compilation: the first epoch call
compiles, the next `--repeats` calls are timed (median). A JAX "epoch" here
has `--model_steps / runs` steps (2..32) so that the biggest stacks stay
quick; the trainer's per-epoch work outside the steps (one argsort per run)
is therefore amortised over fewer steps than in real training, which
slightly understates the JAX rate.

`--compare` also times variants inside the same real trainer: `bce-only`
(the DNN objective), `scan` (a proposed change, monkeypatched for that case
only; the start-up check shows it gives the same loss and gradient: the
same iterations as one hand-written `lax.scan` instead of ott's solver in
`losses.wasserstein`, which Proposed's D uses; Fair_spk's L_D-S no longer
goes through it, so `scan` is not among the defaults). A `+1thread`
suffix runs that case with XLA's Eigen single-threaded.
(`losses.group_distance` itself solves its three Sinkhorn problems as
blocks of the batch's one [B, B] cost matrix, 3 log-sum-exps per iteration
instead of ott's 6, since this benchmark measured it.)

The bare floor (`--worker=bare`) is the same model and BCE step written
directly in Flax (vmap over runs of a scan over pre-laid batches, the
project's dropout mask); the script ends with one line of JSON of the
headline rates (model-steps/s) for tracking over time.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import ml_collections
import numpy as np
from absl import app, flags

_RUNS = flags.DEFINE_list(
    "runs", ["1", "8", "64", "256"], "Stacked JAX run counts."
)
_FUNC_RUNS = flags.DEFINE_list(
    "func_runs", ["8", "64", "256"], "Run counts for the torch.func version."
)
_MODEL_STEPS = flags.DEFINE_integer(
    "model_steps",
    1024,
    "Target runs x steps per timed call (steps clamped to [2, 32]).",
)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per case.")
_SEQ_RUNS = flags.DEFINE_integer("seq_runs", 3, "Runs of the torch loop.")
_SEQ_STEPS = flags.DEFINE_integer(
    "seq_steps", 24, "Timed steps per run of the torch loop."
)
_NUM_UTTERANCES = flags.DEFINE_integer(
    "num_utterances", 7362, "Rows of the synthetic S1 table (paper: 7362)."
)
_COMPARE = flags.DEFINE_list(
    "compare",
    ["bce-only", "ott+1thread"],
    "Variants to time in the real trainer: scan (a proposed losses.py "
    "change), ott (as is), each optionally '+1thread' (XLA flag); "
    "bce-only: the same trainer on the BCE-only (DNN) objective.",
)
_COMPARE_RUNS = flags.DEFINE_list(
    "compare_runs", ["64"], "Run counts for --compare."
)
_QUICK = flags.DEFINE_bool(
    "quick",
    False,
    "Fewer cases and steps: 1/8/64 runs, compare only bce-only.",
)
_WORKER = flags.DEFINE_string(
    "worker", "", "Internal: run one case (jax | seq | func) and exit."
)
_NUM_RUNS = flags.DEFINE_integer("num_runs", 1, "Internal: worker runs.")
_STEPS = flags.DEFINE_integer("steps", 8, "Internal: worker steps.")
_THREADS = flags.DEFINE_integer(
    "threads", 0, "Internal: torch intra-op threads (0: torch's default)."
)
_SINKHORN = flags.DEFINE_string(
    "sinkhorn", "ott", "Internal: ott (as is) or a proposal (jax worker)."
)

# The paper's S1 class counts (Table 1) and S2 share; protocol size.
_CLASS_COUNTS = (1706, 1633, 1099, 1080, 1844)
_S2_SHARE = 4324 / 7362
_PROTOCOL_RUNS = 700
_PROTOCOL_EPOCHS = 500
_FEATURE_DIM = 768


# ---------------------------------------------------------------------------
# Synthetic IEMOCAP-like S1 table (host NumPy; both frameworks use it).
# ---------------------------------------------------------------------------


def synthetic_s1(num: int, seed: int = 0) -> dict[str, np.ndarray]:
    """An S1-like table: features [N, 768], label [N], genders, session.

    Labels follow the paper's class proportions, sessions 1..5 in turn,
    speaker gender balanced, 58.7 % of rows in S2 with a rater group.
    """
    rng = np.random.default_rng(seed)
    counts = np.floor(np.asarray(_CLASS_COUNTS) / 7362 * num).astype(int)
    counts[0] += num - counts.sum()
    label = rng.permutation(np.repeat(np.arange(5), counts)).astype(np.int32)
    session = (np.arange(num) % 5 + 1).astype(np.int32)
    speaker = (rng.random(num) < 0.5).astype(np.int32)  # F=0, M=1
    in_s2 = rng.random(num) < _S2_SHARE
    rater = np.where(in_s2, rng.random(num) < 0.5, 0).astype(np.int32)
    features = rng.normal(size=(num, _FEATURE_DIM)).astype(np.float32)
    features[:, :5] += 0.5 * np.eye(5, dtype=np.float32)[label]
    return dict(
        features=features,
        label=label,
        session=session,
        speaker=speaker,
        rater=rater,
        in_s2=in_s2,
    )


def steps_for(num_runs: int, model_steps: int) -> int:
    """Steps per timed call so that runs × steps ≈ `model_steps`."""
    return int(min(32, max(2, model_steps // num_runs)))


def _peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, reset by exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _emit(result: dict) -> None:
    result["peak_rss_mib"] = _peak_rss_mib()
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# JAX: the real trainer, plus the proposed wasserstein replacements.
# ---------------------------------------------------------------------------


def _jax_dataset(table: dict[str, np.ndarray]):
    from fairser_jax import constants
    from fairser_jax.train import dataset as dataset_lib

    n = len(table["label"])
    ids = [f"Ses0{s}X_{i:05d}" for i, s in enumerate(table["session"])]
    code = {0: "F", 1: "M"}
    rater = {
        i: code[int(g)]
        for i, g, s2 in zip(ids, table["rater"], table["in_s2"], strict=True)
        if s2
    }
    return dataset_lib.make_dataset(
        ids=ids,
        features=table["features"],
        labels=[constants.EMOTIONS[i] for i in table["label"]],
        speaker_group=[code[int(g)] for g in table["speaker"][:n]],
        folds=np.asarray(table["session"]) - 1,
        s2_rater_group=rater,
    )


def _sq_euclidean(x, y):
    """[N, M] squared distances, ott's SqEuclidean formula."""
    import jax.numpy as jnp

    return (
        jnp.sum(x * x, -1)[:, None]
        + jnp.sum(y * y, -1)[None, :]
        - 2.0 * x @ y.T
    )


def _prepare_clouds(x, y, x_weights, y_weights):
    """What `losses.wasserstein` does before calling ott."""
    import jax.numpy as jnp

    from fairser_jax import losses

    a, x_present, has_x = losses._normalised_weights(x_weights)
    b, y_present, has_y = losses._normalised_weights(y_weights)
    x = jnp.where(x_present[:, None], x, 0.0)
    y = jnp.where(y_present[:, None], y, 0.0)
    return x, y, a, b, has_x & has_y


def _jax_reg_ot(cost, a, b, eps, num_iterations: int, symmetric: bool):
    """ott's lse-mode Sinkhorn and `reg_ot_cost`, as one `lax.scan`.

    From zero potentials (−inf on zero weights); OT(x, y) alternates the g
    then f updates, the symmetric terms use parallel updates averaged with
    momentum 0.5 (ott's `sinkhorn_divergence` defaults).
    """
    import jax
    import jax.numpy as jnp

    log_a = jnp.where(a > 0, jnp.log(jnp.where(a > 0, a, 1.0)), -jnp.inf)
    log_b = jnp.where(b > 0, jnp.log(jnp.where(b > 0, b, 1.0)), -jnp.inf)

    def new_g(f):
        lse = jax.nn.logsumexp((f[:, None] - cost) / eps, axis=0)
        return eps * log_b - eps * lse

    def new_f(g):
        lse = jax.nn.logsumexp((g[None, :] - cost) / eps, axis=1)
        return eps * log_a - eps * lse

    def finite(v):
        return jnp.where(jnp.isfinite(v), v, 0.0)

    def body(carry, _):
        f, g = carry
        if symmetric:
            f_next, g_next = new_f(g), new_g(f)
            return (
                0.5 * finite(f) + 0.5 * f_next,
                0.5 * finite(g) + 0.5 * g_next,
            ), None
        g = new_g(f)
        return (new_f(g), g), None

    f0 = jnp.where(a > 0, 0.0, -jnp.inf).astype(cost.dtype)
    g0 = jnp.where(b > 0, 0.0, -jnp.inf).astype(cost.dtype)
    (f, g), _ = jax.lax.scan(body, (f0, g0), None, length=num_iterations)
    div_a = jnp.sum(jnp.where(a > 0, a * (f - eps * log_a), 0.0))
    div_b = jnp.sum(jnp.where(b > 0, b * (g - eps * log_b), 0.0))
    mass = jnp.sum(jnp.exp((f[:, None] + g[None, :] - cost) / eps))
    return div_a + div_b + eps * (jnp.sum(a) * jnp.sum(b) - mass)


def wasserstein_scan(
    x, y, x_weights, y_weights, *, epsilon, num_iterations, debiased=True
):
    """`losses.wasserstein`'s exact value with a hand-written Sinkhorn scan."""
    import jax.numpy as jnp

    x, y, a, b, ok = _prepare_clouds(x, y, x_weights, y_weights)
    value = _jax_reg_ot(
        _sq_euclidean(x, y), a, b, epsilon, num_iterations, False
    )
    if debiased:
        value = value - 0.5 * (
            _jax_reg_ot(
                _sq_euclidean(x, x), a, a, epsilon, num_iterations, True
            )
            + _jax_reg_ot(
                _sq_euclidean(y, y), b, b, epsilon, num_iterations, True
            )
        )
    return jnp.where(ok, value, 0.0)


# Reference case: the same trainer and model with the BCE-only objective
# (the DNN variant): what the MLP, AdamW and batching cost without L_cl and
# L_D-S, i.e. an upper bound for any Fair_spk implementation of this model.
_FLOOR = "bce-only"

# Proposed replacements: name -> (function of fairser_jax.losses, new one).
_PROPOSALS = {
    "scan": ("wasserstein", wasserstein_scan),
}


@contextlib.contextmanager
def _patched(impl: str):
    """Temporarily replaces a `losses` function by proposal `impl`."""
    from fairser_jax import losses

    if impl in ("ott", _FLOOR):
        yield
        return
    name, fn = _PROPOSALS[impl]
    original = getattr(losses, name)
    setattr(losses, name, fn)
    try:
        yield
    finally:
        setattr(losses, name, original)


def _time_epochs(
    call: Callable[[int], np.ndarray], repeats: int, runs: int, steps: int
) -> dict:
    """Times `call(epoch)` for epochs 0..repeats (0 compiles).

    `call` returns the epoch's step losses (as NumPy, so the time includes
    finishing the work); a non-finite loss stops the benchmark.

    Returns:
      The timing fields of a RESULT: runs, steps, first_call_s, seconds
      (median of the timed calls) and rate (model-steps/s).
    """
    times = []
    for epoch in range(repeats + 1):
        tic = time.perf_counter()
        losses = call(epoch)
        times.append(time.perf_counter() - tic)
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(f"non-finite loss, epoch {epoch}")
    seconds = statistics.median(times[1:])
    return dict(
        runs=runs,
        steps=steps,
        first_call_s=times[0],
        seconds=seconds,
        rate=runs * steps / seconds,
    )


def trainer_epochs(
    variant: str,
    num_runs: int,
    steps: int,
    repeats: int,
    runs_per_chunk: int | None = None,
) -> tuple[Callable[[int], np.ndarray], ml_collections.ConfigDict]:
    """The real trainer's epoch over `num_runs` stacked runs of `variant`.

    As `runner.train_variant` does it (the data and the runs placed on the
    runs mesh of every device of the run, each chunk of runs trained by
    one call, the step losses gathered every epoch as `runner.fit` does),
    with the benchmark's own steps per epoch; `runs_per_chunk` overrides
    `config.train.runs_per_chunk`.

    Returns:
      (`call(epoch) -> step losses [R, steps]`, the config).
    """
    from fairser_jax import config as config_lib
    from fairser_jax import constants, distributed, models
    from fairser_jax.train import runner
    from fairser_jax.train import runs as runs_lib
    from fairser_jax.train import variants as variants_lib

    cfg = config_lib.get_default_config()
    cfg.train.epochs = repeats + 1
    if runs_per_chunk is not None:
        cfg.train.runs_per_chunk = runs_per_chunk
    data, info = _jax_dataset(synthetic_s1(_NUM_UTTERANCES.value))
    seeds = range(math.ceil(num_runs / 25))
    specs = runs_lib.make_runs(variant, constants.EMOTIONS, range(5), seeds)
    stack = dataclasses.replace(
        runner.plan(variant, specs[:num_runs], info.fold, cfg),
        steps_per_epoch=steps,
    )
    data = distributed.put(data, stack.replicated)
    model = models.model_from_config(cfg.model)
    tx = runner.make_optimizer(cfg)
    state, _ = runner.init_or_restore(stack, cfg, model, tx, _FEATURE_DIM)
    states = stack.split(state)
    run_chunks = stack.split(runner.run_inputs(stack, None))
    data_on = stack.on_devices(data)
    epoch_fn = runner.make_epoch_fn(
        model, tx, variants_lib.objective(stack.variant), cfg, steps
    )

    def call(epoch: int) -> np.ndarray:
        nonlocal states
        states, losses = runner.train_epoch(
            stack, epoch_fn, states, run_chunks, data_on, epoch
        )
        return losses

    return call, cfg


def _jax_worker(num_runs: int, steps: int, repeats: int, impl: str) -> None:
    import jax

    variant = "dnn" if impl == _FLOOR else "fair_spk"
    call, cfg = trainer_epochs(variant, num_runs, steps, repeats)
    with _patched(impl):  # traced (once) in the first call
        timing = _time_epochs(call, repeats, num_runs, steps)
    _emit(
        dict(
            case="jax",
            impl=impl,
            **timing,
            device=str(jax.devices()[0]),
            sinkhorn_iterations=cfg.loss.sinkhorn_iterations,
            batch_size=cfg.train.batch_size,
        )
    )


def _bare_worker(num_runs: int, steps: int, repeats: int) -> None:
    """The floor: the same model and BCE step, written bare in Flax.

    768 → 256 → 128 → 1, ReLU, dropout 0.2, AdamW (lr 1e-3, decay 1e-3),
    BCE on one emotion, batch 32, the same PRNG implementation as the
    trainer; `jax.vmap` over runs of a `lax.scan` over steps whose batch
    slices are laid out before the timed calls ([R, S, 32, 768]). No
    gather, no loss history, no fairness heads: what any trainer of this
    model must at least spend.
    """
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    class Bare(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            for width in (256, 128):
                x = nn.relu(nn.Dense(width)(x))
                x = nn.Dropout(0.2, deterministic=not train)(x)
            return nn.Dense(1)(x)[..., 0]

    model = Bare()
    tx = optax.adamw(1e-3, weight_decay=1e-3)
    table = synthetic_s1(_NUM_UTTERANCES.value)
    rng = np.random.default_rng(0)
    rows = rng.integers(
        0, len(table["label"]), size=(num_runs, steps, 32), dtype=np.int64
    )
    xs = jnp.asarray(table["features"][rows])
    ys = jnp.asarray((table["label"][rows] == 0).astype(np.float32))

    def init(key):
        params = model.init(key, jnp.zeros((1, _FEATURE_DIM)), train=False)
        return params, tx.init(params)

    def epoch(state, x, y, key):
        def step(carry, inputs):
            params, opt_state = carry
            xb, yb, k = inputs

            def loss_fn(p):
                logits = model.apply(p, xb, train=True, rngs={"dropout": k})
                return optax.sigmoid_binary_cross_entropy(logits, yb).mean()

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        keys = jax.random.split(key, steps)
        return jax.lax.scan(step, state, (x, y, keys))

    keys = jax.random.split(jax.random.key(0), num_runs)
    state = jax.jit(jax.vmap(init))(keys)
    run_epoch = jax.jit(jax.vmap(epoch), donate_argnums=0)
    epoch_keys = [
        jax.vmap(lambda k, e=e: jax.random.fold_in(k, e))(keys)
        for e in range(repeats + 1)
    ]

    def call(epoch: int) -> np.ndarray:
        nonlocal state
        state, losses = run_epoch(state, xs, ys, epoch_keys[epoch])
        return np.asarray(losses)

    _emit(
        dict(
            case="bare",
            impl="bare-bce",
            **_time_epochs(call, repeats, num_runs, steps),
            device=str(jax.devices()[0]),
            batch_size=32,
            sinkhorn_iterations=0,
        )
    )


# ---------------------------------------------------------------------------
# PyTorch: the same model, losses and optimiser.
# ---------------------------------------------------------------------------


def _torch_model_cls():
    import torch
    from torch import nn

    class TorchFairSER(nn.Module):
        """768 → 256 → 128 encoder (ReLU, dropout), Dense(1) emotion head,
        Dense(64)-ReLU-Dense(1) adversary (unused by Fair_spk)."""

        def __init__(self, sizes=(256, 128), dropout=0.2, hidden=64):
            super().__init__()
            layers, width = [], _FEATURE_DIM
            for size in sizes:
                layers += [
                    nn.Linear(width, size),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                ]
                width = size
            self.encoder = nn.Sequential(*layers)
            self.emotion_head = nn.Linear(width, 1)
            self.adversary_head = nn.Sequential(
                nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1)
            )

        def forward(self, x: torch.Tensor):
            z = self.encoder(x)
            return self.emotion_head(z).squeeze(-1), z

    return TorchFairSER


def torch_supervised_contrastive(z, labels, temperature: float):
    """L_cl (Khosla et al. L^sup_out) as in `losses.supervised_contrastive`."""
    import torch

    floor = torch.finfo(z.dtype).eps ** 2
    u = z * torch.rsqrt(torch.clamp((z * z).sum(-1, keepdim=True), min=floor))
    logits = u @ u.T / temperature
    eye = torch.eye(z.shape[0], dtype=torch.bool)
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    num_pos = positive.sum(1)
    mean_pos = log_prob.masked_fill(~positive, 0.0).sum(1) / num_pos.clamp(
        min=1
    )
    anchor = (num_pos > 0).to(z.dtype)
    return -(mean_pos * anchor).sum() / anchor.sum().clamp(min=1.0)


def _torch_reg_ot(cost, a, b, eps: float, iterations: int, symmetric: bool):
    """ott's log-domain Sinkhorn `reg_ot_cost` (see `_jax_reg_ot`)."""
    import torch

    inf = float("inf")
    log_a = torch.where(a > 0, torch.log(a.clamp(min=1e-30)), -inf)
    log_b = torch.where(b > 0, torch.log(b.clamp(min=1e-30)), -inf)
    f = torch.where(a > 0, 0.0, -inf)
    g = torch.where(b > 0, 0.0, -inf)
    for _ in range(iterations):
        g_next = eps * log_b - eps * torch.logsumexp(
            (f[:, None] - cost) / eps, 0
        )
        if symmetric:
            f_next = eps * log_a - eps * torch.logsumexp(
                (g[None, :] - cost) / eps, 1
            )
            f = 0.5 * torch.where(torch.isfinite(f), f, 0.0) + 0.5 * f_next
            g = 0.5 * torch.where(torch.isfinite(g), g, 0.0) + 0.5 * g_next
        else:
            g = g_next
            f = eps * log_a - eps * torch.logsumexp(
                (g[None, :] - cost) / eps, 1
            )
    div_a = torch.where(a > 0, a * (f - eps * log_a), 0.0).sum()
    div_b = torch.where(b > 0, b * (g - eps * log_b), 0.0).sum()
    mass = torch.exp((f[:, None] + g[None, :] - cost) / eps).sum()
    return div_a + div_b + eps * (a.sum() * b.sum() - mass)


def torch_group_distance(z, groups, eps: float, iterations: int):
    """L_D-S: debiased Sinkhorn divergence, male vs female rows of z."""
    import torch

    def weights(mask):
        w = mask.to(z.dtype)
        total = w.sum()
        uniform = torch.full_like(w, 1.0 / w.shape[0])
        return torch.where(total > 0, w / total.clamp(min=1e-30), uniform)

    def sq_euclidean(x, y):
        return (x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :] - 2 * x @ y.T

    male, female = groups == 1, groups == 0
    a, b = weights(male), weights(female)
    x = torch.where(male[:, None], z, 0.0)
    y = torch.where(female[:, None], z, 0.0)
    value = _torch_reg_ot(sq_euclidean(x, y), a, b, eps, iterations, False)
    value = value - 0.5 * (
        _torch_reg_ot(sq_euclidean(x, x), a, a, eps, iterations, True)
        + _torch_reg_ot(sq_euclidean(y, y), b, b, eps, iterations, True)
    )
    return torch.where(male.any() & female.any(), value, 0.0)


def torch_speaker_fair(logits, z, y, speaker, loss_cfg):
    """Eq. (2): L_S − L_cl + λ_S L_D-S, as `objectives.speaker_fair`.

    L_D-S compares z/‖z‖ when `loss_cfg.unit_sphere_distance` is set (as
    `objectives.distance_space` does), else z.
    """
    import torch
    import torch.nn.functional as F

    l_s = F.binary_cross_entropy_with_logits(logits, y)
    l_cl = torch_supervised_contrastive(z, speaker, loss_cfg.temperature)
    z_d = z
    if loss_cfg.get("unit_sphere_distance", False):
        z_d = z * torch.rsqrt((z * z).sum(-1, keepdim=True) + 1e-12)
    l_ds = torch_group_distance(
        z_d, speaker, loss_cfg.epsilon, loss_cfg.sinkhorn_iterations
    )
    return l_s - l_cl + loss_cfg.lambda_s * l_ds


class _TorchData:
    """The table as torch tensors, and per-run training rows."""

    def __init__(self, table: dict[str, np.ndarray]):
        import torch

        self.features = torch.from_numpy(table["features"])
        self.label = torch.from_numpy(table["label"]).long()
        self.speaker = torch.from_numpy(table["speaker"]).long()
        self.fold = table["session"] - 1

    def train_rows(self, run: int):
        import torch

        return torch.from_numpy(np.flatnonzero(self.fold != run % 5))

    def batch(self, rows, emotion: int):
        return (
            self.features[rows],
            (self.label[rows] == emotion).float(),
            self.speaker[rows],
        )


def _torch_sequential_worker(num_runs: int, steps: int) -> None:
    import torch

    from fairser_jax import config as config_lib

    cfg = config_lib.get_default_config()
    data = _TorchData(synthetic_s1(_NUM_UTTERANCES.value))
    model_cls = _torch_model_cls()
    batch = cfg.train.batch_size
    elapsed, done = 0.0, 0
    for run in range(num_runs):
        torch.manual_seed(run)
        model = model_cls()
        opt = torch.optim.AdamW(
            model.parameters(),
            lr=cfg.train.learning_rate,
            weight_decay=cfg.train.weight_decay,
        )
        # optax.adamw updates (decays) every leaf, also those without a
        # gradient (the adversary here): give torch zero grads for them.
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        rows = data.train_rows(run)
        order = rows[torch.randperm(len(rows))]
        warmup = 2
        for step in range(warmup + steps):
            if step == warmup:
                tic = time.perf_counter()
            x, y, spk = data.batch(
                order[step * batch : (step + 1) * batch], run % 5
            )
            opt.zero_grad(set_to_none=False)
            logits, z = model(x)
            loss = torch_speaker_fair(logits, z, y, spk, cfg.loss)
            loss.backward()
            opt.step()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss in run {run}")
        elapsed += time.perf_counter() - tic
        done += steps
    _emit(
        dict(
            case="seq",
            runs=num_runs,
            steps=steps,
            seconds=elapsed,
            rate=done / elapsed,
            threads=torch.get_num_threads(),
        )
    )


def _adamw_(params, grads, mu, nu, count: int, lr: float, decay: float):
    """One AdamW step on stacked tensors, in place (b1 .9, b2 .999, 1e-8)."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    bias1, bias2 = 1 - b1**count, 1 - b2**count
    for name, p in params.items():
        g = grads[name]
        p.mul_(1 - lr * decay)
        mu[name].lerp_(g, 1 - b1)
        nu[name].mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (nu[name] / bias2).sqrt_().add_(eps)
        p.addcdiv_(mu[name], denom, value=-lr / bias1)


def _torch_func_step_fn(base, loss_cfg) -> Callable:
    from torch.func import functional_call, grad_and_value, vmap

    def loss_one(params, buffers, x, y, speaker):
        logits, z = functional_call(base, (params, buffers), (x,))
        return torch_speaker_fair(logits, z, y, speaker, loss_cfg)

    return vmap(grad_and_value(loss_one), randomness="different")


def _torch_func_worker(num_runs: int, steps: int) -> None:
    import torch
    from torch.func import stack_module_state

    from fairser_jax import config as config_lib

    cfg = config_lib.get_default_config()
    data = _TorchData(synthetic_s1(_NUM_UTTERANCES.value))
    model_cls = _torch_model_cls()
    torch.manual_seed(0)
    members = [model_cls() for _ in range(num_runs)]
    params, buffers = stack_module_state(members)
    base = copy.deepcopy(members[0]).to("meta")
    step_fn = _torch_func_step_fn(base, cfg.loss)
    mu = {k: torch.zeros_like(v) for k, v in params.items()}
    nu = {k: torch.zeros_like(v) for k, v in params.items()}
    batch = cfg.train.batch_size
    width = min(len(data.train_rows(r)) for r in range(num_runs))
    orders = torch.stack(
        [data.train_rows(r)[torch.randperm(width)] for r in range(num_runs)]
    )
    emotion = torch.arange(num_runs) % 5
    warmup = 2
    for step in range(warmup + steps):
        if step == warmup:
            tic = time.perf_counter()
        rows = orders[:, step * batch : (step + 1) * batch]
        x = data.features[rows]
        y = (data.label[rows] == emotion[:, None]).float()
        spk = data.speaker[rows]
        grads, loss = step_fn(params, buffers, x, y, spk)
        with torch.no_grad():
            _adamw_(
                params,
                grads,
                mu,
                nu,
                step + 1,
                cfg.train.learning_rate,
                cfg.train.weight_decay,
            )
        if not torch.isfinite(loss).all():
            raise FloatingPointError(f"non-finite loss at step {step}")
    elapsed = time.perf_counter() - tic
    _emit(
        dict(
            case="func",
            runs=num_runs,
            steps=steps,
            seconds=elapsed,
            rate=num_runs * steps / elapsed,
            threads=torch.get_num_threads(),
        )
    )


# ---------------------------------------------------------------------------
# Equal work: torch loss and gradient == JAX loss and gradient.
# ---------------------------------------------------------------------------


def check_equal_work() -> dict[str, float]:
    """Loss and gradients of eq. (2), JAX vs torch, same weights and batch.

    Dropout off (deterministic). Also checks the torch.func (vmapped)
    loss against the plain torch one.
    """
    import jax
    import jax.numpy as jnp
    import torch
    from torch.func import stack_module_state

    from fairser_jax import config as config_lib
    from fairser_jax import models
    from fairser_jax.train import objectives

    cfg = config_lib.get_default_config()
    table = synthetic_s1(_NUM_UTTERANCES.value)
    rows = np.random.default_rng(1).choice(
        len(table["label"]), cfg.train.batch_size, replace=False
    )
    x = table["features"][rows]
    y = (table["label"][rows] == 2).astype(np.float32)
    spk = table["speaker"][rows]
    model = models.model_from_config(cfg.model)
    params = model.init(
        jax.random.key(0), jnp.zeros((1, _FEATURE_DIM)), train=False
    )["params"]
    batch = objectives.Batch(
        x=jnp.asarray(x),
        y=jnp.asarray(y),
        speaker_group=jnp.asarray(spk),
        rater_group=jnp.zeros_like(jnp.asarray(spk)),
        in_s2=jnp.zeros(len(rows), bool),
    )

    def jax_loss(p):
        out = model.apply({"params": p}, batch.x, train=False)
        return objectives.speaker_fair(out, batch, cfg.loss)[0]

    def first_kernel_grad(grads):
        return np.asarray(grads["encoder"]["dense_0"]["kernel"])

    j_loss, j_grads = jax.value_and_grad(jax_loss)(params)
    j_grad = first_kernel_grad(j_grads)
    proposed = {}
    for impl in _PROPOSALS:
        with _patched(impl):
            p_loss, p_grads = jax.value_and_grad(jax_loss)(params)
        p_err = np.max(np.abs(first_kernel_grad(p_grads) - j_grad))
        proposed[impl] = (float(p_loss), float(p_err / np.max(np.abs(j_grad))))

    def to_torch(kernel_bias):
        return (
            torch.from_numpy(np.asarray(kernel_bias["kernel"]).T.copy()),
            torch.from_numpy(np.asarray(kernel_bias["bias"]).copy()),
        )

    net = _torch_model_cls()()
    enc = params["encoder"]
    pairs = {
        "encoder.0": enc["dense_0"],
        "encoder.3": enc["dense_1"],
        "emotion_head": params["emotion_head"]["dense"],
        "adversary_head.0": params["adversary_head"]["hidden"],
        "adversary_head.2": params["adversary_head"]["out"],
    }
    state = {}
    for prefix, leaf in pairs.items():
        state[f"{prefix}.weight"], state[f"{prefix}.bias"] = to_torch(leaf)
    net.load_state_dict(state)
    net.eval()
    xt, yt, st = (torch.from_numpy(v) for v in (x, y, spk.astype(np.int64)))
    logits, z = net(xt)
    t_loss = torch_speaker_fair(logits, z, yt, st, cfg.loss)
    t_loss.backward()
    t_grad = net.encoder[0].weight.grad.numpy().T
    grad_err = float(np.max(np.abs(t_grad - j_grad)) / np.max(np.abs(j_grad)))

    stacked, buffers = stack_module_state([net, net])
    base = copy.deepcopy(net).to("meta")
    base.eval()
    _, f_loss = _torch_func_step_fn(base, cfg.loss)(
        {k: v.detach() for k, v in stacked.items()},
        buffers,
        xt.expand(2, -1, -1),
        yt.expand(2, -1),
        st.expand(2, -1),
    )
    return dict(
        jax=float(j_loss),
        torch=float(t_loss.detach()),
        torch_func=float(f_loss[0]),
        grad_rel_err=grad_err,
        proposed=proposed,
    )


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------


# "+1thread": XLA's Eigen matmuls single-threaded (the JAX analogue of
# torch.set_num_threads(1)); on a loaded 2-core host it avoids contention.
_XLA_OPTIONS = {"1thread": "--xla_cpu_multi_thread_eigen=false"}


def _run_case(args: Sequence[str], xla_flags: str = "") -> dict:
    """Runs one worker subprocess; returns its RESULT plus the load."""
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    env = dict(os.environ)
    if xla_flags:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {xla_flags}".strip()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=env
    )
    lines = [
        line for line in proc.stdout.splitlines() if line.startswith("RESULT ")
    ]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise RuntimeError(f"benchmark case {args} failed ({proc.returncode})")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["load"] = max(load_before, os.getloadavg()[0])
    return result


def _fmt_time(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _print_table(rows: list[dict]) -> None:
    header = (
        f"{'implementation':36s} {'runs':>5s} {'steps':>5s} {'threads':>7s} "
        f"{'model-steps/s':>13s} {'1st call s':>10s} {'peak RSS':>9s} "
        f"{'load':>5s}"
    )
    print(header)
    print("-" * len(header))
    names = {
        "jax": "JAX runner (vmap x scan)",
        "seq": "torch sequential (runs in turn)",
        "func": "torch.func (vmap + grad)",
        "bare": "bare Flax vmap x scan, BCE (floor)",
    }
    for row in rows:
        name = names[row["case"]]
        if row.get("impl", "ott") == _FLOOR:
            name = "JAX runner, BCE only (bound)"
        elif row["case"] == "jax" and row.get("impl", "ott") != "ott":
            name = f"JAX runner + proposed {row['impl']}"
        first = row.get("first_call_s")
        first = f"{first:10.1f}" if first is not None else " " * 10
        runs = f"{row['runs']}"
        threads = str(row.get("threads", "xla"))
        print(
            f"{name:36s} {runs:>5s} {row['steps']:5d} {threads:>7s} "
            f"{row['rate']:13.1f} {first} {row['peak_rss_mib']:7.0f}Mi "
            f"{row['load']:5.2f}"
        )


def main(argv: list[str]) -> None:
    del argv
    if _THREADS.value:
        import torch

        torch.set_num_threads(_THREADS.value)
    if _WORKER.value == "jax":
        return _jax_worker(
            _NUM_RUNS.value, _STEPS.value, _REPEATS.value, _SINKHORN.value
        )
    if _WORKER.value == "bare":
        return _bare_worker(_NUM_RUNS.value, _STEPS.value, _REPEATS.value)
    if _WORKER.value == "seq":
        return _torch_sequential_worker(_NUM_RUNS.value, _STEPS.value)
    if _WORKER.value == "func":
        return _torch_func_worker(_NUM_RUNS.value, _STEPS.value)

    quick = _QUICK.value
    jax_runs = [int(r) for r in _RUNS.value if not (quick and int(r) > 64)]
    func_runs = [
        int(r) for r in _FUNC_RUNS.value if not (quick and int(r) > 64)
    ]
    model_steps = _MODEL_STEPS.value // (4 if quick else 1)
    repeats = 2 if quick else _REPEATS.value
    compare = [c for c in _COMPARE.value if c]
    if quick:
        compare = [c for c in compare if c == _FLOOR]
    compare_runs = [int(r) for r in _COMPARE_RUNS.value]
    common = [f"--num_utterances={_NUM_UTTERANCES.value}"]
    start = time.perf_counter()
    print(
        f"host: {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )

    check = check_equal_work()
    print(
        "equal work (same weights and batch, dropout off): eq. (2) loss "
        f"JAX {check['jax']:.6f}, torch {check['torch']:.6f}, torch.func "
        f"{check['torch_func']:.6f}\n(|JAX - torch| = "
        f"{abs(check['jax'] - check['torch']):.1e}); dL/dW1 max rel. diff "
        f"{check['grad_rel_err']:.1e}\nproposed JAX losses.py changes, same "
        "batch: "
        + ", ".join(
            f"{k} {v:.6f} (dL/dW1 rel. diff {e:.1e})"
            for k, (v, e) in check["proposed"].items()
        )
    )
    if abs(check["jax"] - check["torch"]) > 1e-4 * max(1, abs(check["jax"])):
        raise AssertionError("torch and JAX losses differ: not equal work")

    def jax_case(runs: int, impl: str = "ott", steps: int = 0) -> dict:
        base, _, option = impl.partition("+")
        result = _run_case(
            ["--worker=jax", f"--num_runs={runs}"]
            + [f"--steps={steps or steps_for(runs, model_steps)}"]
            + [f"--repeats={repeats}", f"--sinkhorn={base}", *common],
            xla_flags=_XLA_OPTIONS[option] if option else "",
        )
        result["impl"] = impl
        result["threads"] = "xla-1" if option == "1thread" else "xla"
        return result

    rows = [jax_case(r) for r in jax_runs]
    # The trainer's BCE-only step against the same model written bare, at
    # 1 and 64 runs × 32 steps (the trainer's once-per-epoch work, one
    # argsort per run, is amortised over 32 steps, not 185 as in training),
    # each pair run back to back (same load).
    for r in (1, 64):
        rows.append(jax_case(r, _FLOOR, steps=32))
        rows.append(
            _run_case(
                ["--worker=bare", f"--num_runs={r}", "--steps=32"]
                + [f"--repeats={repeats}", *common]
            )
        )
    # torch's default is one thread per core; on a small shared CPU one
    # thread can be faster (no OpenMP contention): time both, keep the best.
    for threads in (1, 2):
        rows.append(
            _run_case(
                ["--worker=seq", f"--num_runs={_SEQ_RUNS.value}"]
                + [f"--steps={_SEQ_STEPS.value // (2 if quick else 1)}"]
                + [f"--threads={threads}", *common]
            )
        )
        for r in func_runs:
            steps = max(3, min(16, model_steps // (4 * r)))
            rows.append(
                _run_case(
                    ["--worker=func", f"--num_runs={r}", f"--steps={steps}"]
                    + [f"--threads={threads}", *common]
                )
            )
    rows += [
        jax_case(r, impl)
        for impl in compare
        for r in compare_runs
        if not (impl == _FLOOR and r in (1, 64))
    ]

    def rate(case: str, runs: int, impl: str = "ott") -> float | None:
        rates = [
            row["rate"]
            for row in rows
            if row["case"] == case
            and (case == "seq" or row["runs"] == runs)
            and row.get("impl", "ott") == impl
        ]
        return max(rates) if rates else None

    def bare(runs: int) -> float | None:
        return rate("bare", runs, "bare-bce")

    print(
        f"\nFair_spk step (eq. 2), batch {rows[0]['batch_size']}, "
        f"{rows[0]['sinkhorn_iterations']} log-domain Sinkhorn iterations "
        f"x 3 problems, JAX on {rows[0]['device']}; 'load' = 1-min load "
        "average around the case\n"
    )
    _print_table(rows)
    seq = rate("seq", 0)
    print(
        f"\n(torch figures below: the faster thread setting; seq = {seq:.1f})"
    )
    for r in sorted({64, *compare_runs}):
        jax_rate, func_rate = rate("jax", r), rate("func", r)
        if jax_rate is not None:
            print(
                f"{r} runs: JAX Fair_spk / sequential torch = "
                f"{jax_rate / seq:.1f}x (goal >= 10x)"
            )
        if jax_rate is not None and func_rate is not None:
            print(
                f"{r} runs: JAX Fair_spk / torch.func = "
                f"{jax_rate / func_rate:.2f}x (goal >= 3.5x)"
            )
        for impl in compare:
            alt = rate("jax", r, impl)
            if alt is None:
                continue
            vs_func = (
                f", {alt / func_rate:.2f}x torch.func" if func_rate else ""
            )
            if impl == _FLOOR:
                print(
                    f"{r} runs, BCE-only step (same trainer, no L_cl, no "
                    f"L_D-S): {alt:.1f} model-steps/s = {alt / seq:.1f}x "
                    f"sequential torch Fair_spk{vs_func}: the bound for "
                    "any Fair_spk step of this model here"
                )
                continue
            gain = (
                f"{alt / jax_rate:.1f}x the current trainer, "
                if jax_rate
                else ""
            )
            print(
                f"{r} runs, proposed '{impl}': {alt:.1f} model-steps/s = "
                f"{gain}{alt / seq:.1f}x sequential torch{vs_func}"
            )

    for r in (1, 64):
        floor, ours = bare(r), rate("jax", r, _FLOOR)
        if floor and ours:
            print(
                f"{r} runs: trainer BCE-only / bare vmap x scan BCE = "
                f"{ours / floor:.2f} (goal >= 0.90)"
            )
    one, many = rate("jax", 1), rate("jax", 64)
    if one and many:
        print(
            f"Fair_spk per model-step, 64 runs / 1 run = {many / one:.2f} "
            "(goal >= 1: more runs not slower)"
        )

    steps_per_epoch = math.ceil(_NUM_UTTERANCES.value * 4 / 5 / 32)
    total = _PROTOCOL_RUNS * _PROTOCOL_EPOCHS * steps_per_epoch
    biggest = max(jax_runs)
    print(
        f"\nPaper protocol: {_PROTOCOL_RUNS} runs x {_PROTOCOL_EPOCHS} epochs "
        f"x {steps_per_epoch} steps/epoch ({_NUM_UTTERANCES.value} x 4/5 "
        f"training utterances / 32) = {total / 1e6:.1f}M model-steps, all "
        "at the measured Fair_spk rate (DNN runs are cheaper, Fair_rat "
        "similar):"
    )
    projections = [(f"JAX runner at {biggest} runs", rate("jax", biggest))]
    projections += [
        (f"proposed '{impl}' at {r} runs", rate("jax", r, impl))
        for impl in compare
        for r in compare_runs
        if impl != _FLOOR
    ]
    projections.append(("torch sequential", seq))
    for label, value in projections:
        if value:
            print(f"  {label:38s} {_fmt_time(total / value)}")
    for row in rows:
        if row["case"] == "jax" and row["runs"] == 256:
            print(
                f"\nPeak RSS of the 256-run JAX case ({row['impl']}): "
                f"{row['peak_rss_mib']:.0f} MiB"
            )
    print(
        f"\nwall time {time.perf_counter() - start:.0f} s, load average "
        f"now {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    # One line of JSON (model-steps/s) for tracking over time.
    print(
        json.dumps(
            {
                "jax_fair_spk_runs64": rate("jax", 64),
                "jax_fair_spk_runs1": rate("jax", 1),
                "jax_bce_runs64": rate("jax", 64, _FLOOR),
                "jax_bce_runs1": rate("jax", 1, _FLOOR),
                "bare_bce_runs64": bare(64),
                "bare_bce_runs1": bare(1),
                "torch_seq": seq,
                "torch_func_runs64": rate("func", 64),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)

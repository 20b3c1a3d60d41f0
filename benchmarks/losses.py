r"""Cost of the Fair_spk loss (eq. 2) and of the Sinkhorn loop choice.

    python benchmarks/losses.py [--runs=1,64] [--iterations=20] [--reps=15]

Times one loss+grad of L_SPK = L_S - L_cl + lambda_S L_D-S (eq. 2) on a
batch of 32 speaker-z-normalised 768-d features mapped by a small MLP
(768-256-128, ReLU, emotion head Dense(1)) to 128-d embeddings; the gradient
is taken w.r.t. the MLP parameters. Each figure is the median (and the
min) of --reps jitted calls after one warm-up call, for R independent runs
stacked with ``jax.vmap`` (each run has its own parameters and batch).

Four L_D-S variants are compared, all at the same fixed epsilon:

- ``fixed``: ``fairser_jax.losses.group_distance``: exactly --iterations
  Sinkhorn steps (a ``lax.scan``), gradient by unrolling (the library).
- ``fixed+danskin``: the same steps, gradient by the envelope theorem
  (potentials frozen), for comparison only.
- ``while+unroll``: ott's convergence-checked while loop (threshold 1e-3,
  checked every 10 steps, at most 2000), gradient by unrolling.
- ``while+implicit``: ott's defaults (same while loop, implicit
  differentiation), i.e. what ``sinkdiv`` does out of the box; for a cost
  ott then uses Danskin's envelope gradient, so no linear system is solved.

It also prints the compiled temporary memory of each variant (XLA's
``memory_analysis``), the Sinkhorn iterations the while loops needed (under
vmap the batch runs until its slowest member converges), and, for several
fixed iteration counts, how far the value and the L_D-S gradient w.r.t. the
embeddings are from the converged ones (2000 steps).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ott.tools import sinkhorn_divergence

from fairser_jax import losses

_RUNS = flags.DEFINE_list("runs", ["1", "64"], "Numbers of vmapped runs.")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
_INPUT = flags.DEFINE_integer("input_dim", 768, "Feature dimension.")
_HIDDEN = flags.DEFINE_integer("hidden", 256, "First encoder layer width.")
_EMBED = flags.DEFINE_integer("embedding", 128, "Embedding dimension.")
_EPS = flags.DEFINE_float("epsilon", 0.1, "Sinkhorn epsilon (absolute).")
_ITERS = flags.DEFINE_integer("iterations", 20, "Fixed Sinkhorn steps.")
_TEMP = flags.DEFINE_float("temperature", 0.1, "L_cl temperature.")
_LAMBDA = flags.DEFINE_float("lambda_s", 1.0, "Weight of L_D-S.")
_REPS = flags.DEFINE_integer("reps", 15, "Timed calls per figure (median).")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")

Params = dict[str, jax.Array]
Distance = Callable[[jax.Array, jax.Array], jax.Array]

_WHILE_KW = dict(threshold=1e-3, inner_iterations=10, max_iterations=2000)


def init_mlp(key: jax.Array) -> Params:
    """LeCun-normal MLP 768-256-128 plus a Dense(1) emotion head."""
    sizes = [_INPUT.value, _HIDDEN.value, _EMBED.value, 1]
    params = {}
    layers = zip(sizes[:-1], sizes[1:], strict=True)
    for i, (fan_in, fan_out) in enumerate(layers):
        key, sub = jax.random.split(key)
        scale = 1.0 / np.sqrt(fan_in)
        params[f"w{i}"] = scale * jax.random.normal(sub, (fan_in, fan_out))
        params[f"b{i}"] = jnp.zeros(fan_out)
    return params


def apply_mlp(params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns emotion logits [B] and embeddings z [B, 128]."""
    h = jax.nn.relu(x @ params["w0"] + params["b0"])
    z = jax.nn.relu(h @ params["w1"] + params["b1"])
    logits = (z @ params["w2"] + params["b2"])[:, 0]
    return logits, z


def _ott_divergence(solve_kwargs: dict) -> Distance:
    """L_D-S computed by ott directly, weights prepared as in losses."""

    def distance(z: jax.Array, groups: jax.Array) -> jax.Array:
        male = (groups == 1).astype(z.dtype)
        female = (groups == 0).astype(z.dtype)
        ok = (male.sum() > 0) & (female.sum() > 0)
        a = male / jnp.maximum(male.sum(), 1.0)
        b = female / jnp.maximum(female.sum(), 1.0)
        a, b = jnp.where(a > 0, a, 0.0), jnp.where(b > 0, b, 0.0)
        value, _ = sinkhorn_divergence.sinkdiv(
            z, z, a=a, b=b, epsilon=_EPS.value, solve_kwargs=solve_kwargs
        )
        return jnp.where(ok, value, 0.0)

    return distance


def _fixed_kwargs(iterations: int, danskin: bool) -> dict:
    return dict(
        min_iterations=iterations,
        max_iterations=iterations,
        inner_iterations=iterations,
        implicit_diff=None,
        use_danskin=danskin,
    )


def distances() -> dict[str, Distance]:
    def fixed(z, groups):
        return losses.group_distance(
            z, groups, epsilon=_EPS.value, num_iterations=_ITERS.value
        )

    return {
        "fixed": fixed,
        "fixed+danskin": _ott_divergence(_fixed_kwargs(_ITERS.value, True)),
        "while+unroll": _ott_divergence(dict(_WHILE_KW, implicit_diff=None)),
        "while+implicit": _ott_divergence(dict(_WHILE_KW)),
    }


def fair_spk_loss(
    params: Params, batch: dict[str, jax.Array], distance: Distance
) -> jax.Array:
    """L_SPK = L_S - L_cl + lambda_S L_D-S (eq. 2)."""
    logits, z = apply_mlp(params, batch["x"])
    l_s = losses.emotion_loss(logits, batch["y"])
    l_cl = losses.supervised_contrastive(
        z, batch["speaker_gender"], temperature=_TEMP.value
    )
    return l_s - l_cl + _LAMBDA.value * distance(z, batch["speaker_gender"])


def make_inputs(runs: int, key: jax.Array):
    k_params, k_x, k_y, k_g = jax.random.split(key, 4)
    params = jax.vmap(init_mlp)(jax.random.split(k_params, runs))
    shape = (runs, _BATCH.value)
    batch = {
        "x": jax.random.normal(k_x, shape + (_INPUT.value,)),
        "y": jax.random.bernoulli(k_y, 0.3, shape).astype(jnp.int32),
        "speaker_gender": jax.random.bernoulli(k_g, 0.5, shape).astype(
            jnp.int32
        ),
    }
    return params, batch


def time_calls(fn: Callable, *args) -> tuple[float, float]:
    """(median, min) seconds of --reps calls after one warm-up call."""
    jax.block_until_ready(fn(*args))  # warm-up (compile)
    times = []
    for _ in range(_REPS.value):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def while_iterations(params: Params, batch: dict[str, jax.Array]):
    """Sinkhorn steps ott's while loop takes for the x-y term, per run."""

    def one(params, batch):
        _, z = apply_mlp(params, batch["x"])
        g = batch["speaker_gender"]
        a = (g == 1) / jnp.maximum((g == 1).sum(), 1)
        b = (g == 0) / jnp.maximum((g == 0).sum(), 1)
        _, out = sinkhorn_divergence.sinkdiv(
            z, z, a=a, b=b, epsilon=_EPS.value, solve_kwargs=_WHILE_KW
        )
        sq_dist = jnp.sum((z[:, None] - z[None]) ** 2, -1)
        return out.n_iters[0], jnp.median(sq_dist)

    return jax.jit(jax.vmap(one))(params, batch)


def accuracy_table(params: Params, batch: dict[str, jax.Array]) -> None:
    """Value and gradient error of a fixed step count vs 2000 steps."""
    _, z = jax.vmap(apply_mlp)(params, batch["x"])
    groups = batch["speaker_gender"]

    def value_and_grad(iterations, danskin):
        distance = _ott_divergence(_fixed_kwargs(iterations, danskin))
        return jax.jit(jax.vmap(jax.value_and_grad(distance)))(z, groups)

    ref_value, ref_grad = value_and_grad(2000, True)
    print(
        f"  L_D-S vs 2000 steps, median over runs: {'steps':>5} "
        f"{'value rel err':>13} {'grad rel err unroll':>19} "
        f"{'grad rel err danskin':>20}"
    )

    def rel(x, ref, axes):
        return np.median(
            np.linalg.norm(x - ref, axis=axes) / np.linalg.norm(ref, axis=axes)
        )

    for iterations in (20, 50, 100, 300):
        value, grad_unroll = value_and_grad(iterations, False)
        _, grad_danskin = value_and_grad(iterations, True)
        value_err = np.median(np.abs(value - ref_value) / np.abs(ref_value))
        print(
            f"{'':42}{iterations:>5} {value_err:>13.2e} "
            f"{rel(grad_unroll, ref_grad, (1, 2)):>19.3f} "
            f"{rel(grad_danskin, ref_grad, (1, 2)):>20.3f}"
        )


def main(argv):
    del argv
    key = jax.random.key(_SEED.value)
    print(
        f"backend={jax.default_backend()} devices={jax.device_count()} "
        f"batch={_BATCH.value} dims={_INPUT.value}-{_HIDDEN.value}-"
        f"{_EMBED.value} epsilon={_EPS.value} fixed_iterations="
        f"{_ITERS.value} reps={_REPS.value} (median)"
    )
    header = (
        f"{'runs':>5} {'L_D-S variant':<15} {'ms/step':>9} {'min ms':>8} "
        f"{'ms/run':>8} {'/ fixed':>8} {'temp MiB':>9} {'finite':>6}"
    )
    print(header)
    print("-" * len(header))
    for runs in (int(r) for r in _RUNS.value):
        params, batch = make_inputs(runs, key)
        fixed_time = None
        for name, distance in distances().items():

            def loss(p, b, distance=distance):
                return fair_spk_loss(p, b, distance)

            step = jax.jit(jax.vmap(jax.value_and_grad(loss)))
            memory = step.lower(params, batch).compile().memory_analysis()
            temp_mib = memory.temp_size_in_bytes / 2**20
            seconds, fastest = time_calls(step, params, batch)
            _, grads = step(params, batch)
            finite = all(
                bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads)
            )
            fixed_time = fixed_time or seconds
            print(
                f"{runs:>5} {name:<15} {1e3 * seconds:>9.2f} "
                f"{1e3 * fastest:>8.2f} {1e3 * seconds / runs:>8.3f} "
                f"{seconds / fixed_time:>8.2f} {temp_mib:>9.1f} "
                f"{str(finite):>6}"
            )
        n_iters, sq_dist = while_iterations(params, batch)
        print(
            f"  while loop steps: median {np.median(n_iters):.0f}, max "
            f"{np.max(n_iters)} (a vmapped while loop runs the max); "
            f"median squared distance {np.median(sq_dist):.1f} "
            f"(cost / epsilon ~ {np.median(sq_dist) / _EPS.value:.0f})"
        )
    accuracy_table(params, batch)


if __name__ == "__main__":
    app.run(main)

"""The runner: every run of a variant trained at once (SPEC §9).

A variant's R runs are one stacked pytree. One jitted call trains all of
them for one epoch: `vmap` over runs of a `lax.scan` over the epoch's steps.
The dataset stays on the device; each run draws its own permutation of its
training rows every epoch, and every run takes the same number of steps per
epoch (the largest fold's; smaller folds wrap their permutation). The runs
axis is sharded over all local devices on a 1-D mesh.

Randomness of a run is a pure function of its own key (`runs.run_key`), the
epoch and the step, so a run's result does not depend on which other runs
share the stack, nor on the number of devices.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import auto as tqdm

from fairser_jax import models
from fairser_jax.train import objectives
from fairser_jax.train.dataset import Dataset
from fairser_jax.train.runs import RunArrays, RunSpec, build_run_arrays

PyTree = Any


@flax.struct.dataclass
class TrainState:
    """State of R stacked runs (every leaf has a leading runs axis).

    Attributes:
      params: model parameters.
      opt_state: optimiser state.
      loss_history: [R, epochs] float32 mean training loss per epoch (the
        paper's loss value, e.g. eq. (1) or (2)); NaN for epochs not run.
    """

    params: PyTree
    opt_state: PyTree
    loss_history: jax.Array


@dataclasses.dataclass(frozen=True)
class VariantOutput:
    """What training one variant produced, on the host.

    Attributes:
      runs: the R run specs.
      arrays: their `RunArrays` (test rows in `arrays.test_idx`).
      logits: [R, N_test_max] test-fold logits (valid up to `arrays.n_test`).
      embeddings: [R, N_test_max, D] test-fold embeddings z.
      loss_history: [R, epochs] mean training loss per epoch.
    """

    runs: list[RunSpec]
    arrays: RunArrays
    logits: np.ndarray
    embeddings: np.ndarray
    loss_history: np.ndarray


class NonFiniteLossError(FloatingPointError):
    """A run's training loss became NaN or Inf."""


def make_optimizer(
    cfg: ml_collections.ConfigDict,
) -> optax.GradientTransformation:
    """Adam with decoupled weight decay (paper §2.2.2: lr 1e-3, decay 1e-3)."""
    return optax.adamw(
        cfg.train.learning_rate, weight_decay=cfg.train.weight_decay
    )


def epoch_order(
    key: jax.Array, n_valid: jax.Array, width: int, total: int
) -> jax.Array:
    """Positions into a run's padded training rows for one epoch.

    A uniformly random permutation of the run's `n_valid` rows, repeated
    (wrapped) until `total` positions are filled.

    Args:
      key: PRNG key of this run and epoch.
      n_valid: [] number of valid rows of the run.
      width: padded row count (static).
      total: positions to produce (steps per epoch × batch size; static).

    Returns:
      [total] int32 positions in `[0, n_valid)`.
    """
    u = jax.random.uniform(key, (width,))
    u = jnp.where(jnp.arange(width) < n_valid, u, 2.0)  # padding sorts last
    perm = jnp.argsort(u)
    return perm[jnp.arange(total) % n_valid].astype(jnp.int32)


def _gather_batch(data: Dataset, rows: jax.Array, emotion: jax.Array):
    return objectives.Batch(
        x=data.features[rows],
        y=(data.label[rows] == emotion).astype(jnp.float32),
        speaker_gender=data.speaker_gender[rows],
        rater_gender=data.rater_gender[rows],
        in_s2=data.in_s2[rows],
    )


def make_epoch_fn(
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    objective: objectives.Objective,
    cfg: ml_collections.ConfigDict,
    steps_per_epoch: int,
    sharding: NamedSharding,
):
    """Builds `epoch(state, runs, data, epoch) -> (state, step_losses)`.

    The returned function is vmapped over runs (leading axis of `state` and
    `runs`) and jitted with the state donated and its outputs placed with
    `sharding` (the runs axis over the mesh), the same placement as its
    inputs. `epoch` is a traced int32, so it compiles once. `step_losses`
    is [R, steps_per_epoch].
    """
    batch_size = cfg.train.batch_size
    loss_cfg = cfg.loss

    def one_run(state: TrainState, run: dict, data: Dataset, epoch):
        key = jax.random.fold_in(
            jax.random.wrap_key_data(run["key"]), 1
        )  # stream 0 initialises the parameters
        key = jax.random.fold_in(key, epoch)
        width = run["train_idx"].shape[0]
        order = epoch_order(
            jax.random.fold_in(key, 0),
            run["n_train"],
            width,
            steps_per_epoch * batch_size,
        )
        rows = run["train_idx"][order].reshape(steps_per_epoch, batch_size)

        def loss_fn(params, batch, dropout_key):
            out = model.apply(
                {"params": params},
                batch.x,
                train=True,
                grl_scale=loss_cfg.grl_scale,
                rngs={"dropout": dropout_key},
            )
            return objective(out, batch, loss_cfg)

        def step(carry, xs):
            params, opt_state = carry
            step_rows, step_index = xs
            batch = _gather_batch(data, step_rows, run["emotion"])
            dropout_key = jax.random.fold_in(key, step_index + 1)
            grads, terms = jax.grad(loss_fn, has_aux=True)(
                params, batch, dropout_key
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state), terms["loss"]

        (params, opt_state), step_losses = jax.lax.scan(
            step,
            (state.params, state.opt_state),
            (rows, jnp.arange(steps_per_epoch)),
        )
        history = state.loss_history.at[epoch].set(jnp.mean(step_losses))
        return TrainState(params, opt_state, history), step_losses

    return jax.jit(
        jax.vmap(one_run, in_axes=(0, 0, None, None)),
        out_shardings=(sharding, sharding),
        donate_argnums=0,
    )


def make_eval_fn(model: models.FairSERModel):
    """`eval(params, test_idx, data) -> (logits[R, T], z[R, T, D])`."""

    def one_run(params, test_idx, data: Dataset):
        out = model.apply(
            {"params": params}, data.features[test_idx], train=False
        )
        return out.logits, out.embeddings

    return jax.jit(jax.vmap(one_run, in_axes=(0, 0, None)))


def runs_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named "runs" over the given (default: all local) devices."""
    devices = jax.local_devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("runs",))


def _device_runs(arrays: RunArrays) -> dict[str, np.ndarray]:
    return {
        "key": arrays.key,
        "emotion": arrays.emotion,
        "alpha": arrays.alpha,
        "train_idx": arrays.train_idx,
        "n_train": arrays.n_train,
    }


def _first_bad(step_losses: np.ndarray) -> tuple[int, int]:
    bad = np.argwhere(~np.isfinite(step_losses))
    r, s = bad[0]
    return int(r), int(s)


def train_variant(
    variant: str,
    runs: list[RunSpec],
    data: Dataset,
    fold: np.ndarray,
    cfg: ml_collections.ConfigDict,
    *,
    checkpoint_dir: str | pathlib.Path | None = None,
    resume: bool = False,
    mesh: Mesh | None = None,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> VariantOutput | None:
    """Trains every run of `variant` together and evaluates its test folds.

    Args:
      variant: "dnn", "fair_spk", "fair_rat" or "basic".
      runs: the runs to train (all of this variant).
      data: the device dataset.
      fold: [N] host fold index of every dataset row.
      cfg: the full config (uses `model`, `loss`, `train`).
      checkpoint_dir: where orbax checkpoints go (every
        `cfg.train.checkpoint_every` epochs and at the end); None: none.
      resume: continue from the latest checkpoint in `checkpoint_dir`.
      mesh: 1-D mesh with axis "runs" (default: all local devices).
      progress: show a tqdm bar.
      stop_after_epoch: stop (without evaluating) after this many epochs;
        simulates a killed job in tests. Returns None then.

    Returns:
      The `VariantOutput` of the R runs (None after `stop_after_epoch`).

    Raises:
      NonFiniteLossError: naming the run and step whose loss is not finite.
    """
    objective = objectives.get(variant)
    mesh = runs_mesh() if mesh is None else mesh
    num_devices = mesh.devices.size
    arrays = build_run_arrays(runs, fold)
    num_runs = len(runs)
    padded = math.ceil(num_runs / num_devices) * num_devices
    pad_index = np.concatenate(
        [np.arange(num_runs), np.zeros(padded - num_runs, np.int64)]
    )
    stacked = arrays.take(pad_index)  # padded runs repeat run 0; discarded

    epochs = cfg.train.epochs
    batch_size = cfg.train.batch_size
    steps_per_epoch = max(1, math.ceil(int(arrays.n_train.max()) / batch_size))

    shard = NamedSharding(mesh, PartitionSpec("runs"))
    replicated = NamedSharding(mesh, PartitionSpec())
    data = jax.device_put(data, replicated)
    device_runs = jax.device_put(_device_runs(stacked), shard)

    model = models.model_from_config(cfg.model)
    tx = make_optimizer(cfg)
    feature_dim = data.features.shape[1]

    def init_one(raw_key):
        key = jax.random.fold_in(jax.random.wrap_key_data(raw_key), 0)
        params = model.init(
            {"params": key}, jnp.zeros((1, feature_dim)), train=False
        )["params"]
        return TrainState(
            params,
            tx.init(params),
            jnp.full((epochs,), jnp.nan, jnp.float32),
        )

    init = jax.jit(jax.vmap(init_one), out_shardings=shard)
    state = init(device_runs["key"])
    start_epoch = 0

    manager = None
    if checkpoint_dir is not None:
        manager = ocp.CheckpointManager(
            pathlib.Path(checkpoint_dir).absolute(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1, enable_async_checkpointing=False
            ),
        )
        latest = manager.latest_step() if resume else None
        if latest is not None:
            abstract = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(
                    x.shape, x.dtype, sharding=x.sharding
                ),
                state,
            )
            state = manager.restore(
                latest, args=ocp.args.StandardRestore(abstract)
            )
            start_epoch = int(latest)
            logging.info(
                "%s: resumed from epoch %d of %d", variant, start_epoch, epochs
            )

    epoch_fn = make_epoch_fn(model, tx, objective, cfg, steps_per_epoch, shard)
    bar = tqdm.tqdm(
        range(start_epoch, epochs),
        desc=f"{variant} ({num_runs} runs)",
        unit="epoch",
        disable=not progress,
        initial=start_epoch,
        total=epochs,
    )
    for epoch in bar:
        tic = time.perf_counter()
        state, step_losses = epoch_fn(
            state, device_runs, data, jnp.asarray(epoch, jnp.int32)
        )
        step_losses = np.asarray(step_losses)[:num_runs]
        seconds = time.perf_counter() - tic
        if not np.all(np.isfinite(step_losses)):
            r, s = _first_bad(step_losses)
            raise NonFiniteLossError(
                f"Non-finite training loss ({step_losses[r, s]}) in run "
                f"{runs[r].name} at epoch {epoch}, step {s} (global step "
                f"{epoch * steps_per_epoch + s}). Lower the learning rate or "
                "check the features for outliers; the last checkpoint is "
                "kept intact."
            )
        bar.set_postfix(
            loss=f"{step_losses.mean():.4f}",
            model_steps_per_s=f"{num_runs * steps_per_epoch / seconds:.0f}",
        )
        done = epoch + 1
        if manager is not None and (
            done % cfg.train.checkpoint_every == 0 or done == epochs
        ):
            manager.save(done, args=ocp.args.StandardSave(state))
            manager.wait_until_finished()
        if stop_after_epoch is not None and done >= stop_after_epoch:
            bar.close()
            return None
    bar.close()

    test_idx = jax.device_put(stacked.test_idx, shard)
    logits, embeddings = make_eval_fn(model)(state.params, test_idx, data)
    return VariantOutput(
        runs=list(runs),
        arrays=arrays,
        logits=np.asarray(logits)[:num_runs],
        embeddings=np.asarray(embeddings)[:num_runs],
        loss_history=np.asarray(state.loss_history)[:num_runs],
    )

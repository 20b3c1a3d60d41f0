"""The runner: every run of a variant trained at once.

A variant's R runs are one stacked pytree. One jitted call trains all of
them for one epoch: `vmap` over runs of a `lax.scan` over the epoch's steps
(`train_step` is one step of one run).
The dataset stays on the device; each run draws its own permutation of its
training rows every epoch, and every run takes the same number of steps per
epoch (the largest fold's; smaller folds wrap their permutation). The runs
axis is laid out over every device of the run on a 1-D mesh: the local
devices, or with several processes (`fairser_jax.distributed`) the devices
of all of them, each process placing only its own shards.

Randomness of a run is a pure function of its own key (`runs.run_key`), the
epoch and the step. Its arithmetic is made independent of the device and
process count too: each device trains its runs in chunks of a fixed size
(`config.train.runs_per_chunk`; its auto value is fixed on CPU, but on an
accelerator it is the runs per device), every chunk through the same program
compiled for one device (`jax.jit` of the chunk, no SPMD partitioning), so
a run sees the same shapes and the same compiled code whatever else is
trained. XLA's code for a stack of runs depends on the stack's size (its
vectorisation) and on whether the program is partitioned over several
devices, and training amplifies the last-bit differences: with the whole
stack of a device in one partitioned program, 1 and 4 devices gave
`y_score` up to 0.22 apart after 300 epochs (docs/DESIGN.md, "Training").

The spine, as in flax's examples: `plan` (runs → padded stack of chunks),
`init_or_restore` (random, from another variant's trained parameters, or
from the latest checkpoint), `fit` (the epoch loop: NaN guard, progress,
checkpoints), `evaluate` (test-fold logits and embeddings);
`train_variant` composes them. What a variant is (objective, anchor,
frozen references, per-run α, objective state, traced terms) comes from
`fairser_jax.train.variants`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
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

from fairser_jax import distributed, fileio, models
from fairser_jax import progress as progress_lib
from fairser_jax.train import objectives
from fairser_jax.train import variants as variants_lib
from fairser_jax.train.dataset import Dataset, DatasetInfo
from fairser_jax.train.runs import (
    RunArrays,
    RunSpec,
    build_run_arrays,
    variant_runs,
)

PyTree = Any


@flax.struct.dataclass
class TrainState:
    """State of one run (stacked: every leaf gains a leading runs axis R).

    Attributes:
      params: model parameters.
      opt_state: optimiser state.
      objective_state: the variant's objective state (e.g. the running mean
        of D behind Proposed's α; `{}` for stateless objectives).
      loss_history: [epochs] float32 mean training loss per epoch (the
        paper's loss value, e.g. eq. (1), (2) or (3)); NaN for epochs not
        run.
      trace: per traced term (`Variant.traced`, e.g. "alpha"), its value at
        every step, [epochs, steps_per_epoch] float32; NaN where not run.
    """

    params: PyTree
    opt_state: PyTree
    objective_state: PyTree
    loss_history: jax.Array
    trace: dict[str, jax.Array]


@flax.struct.dataclass
class RunInputs:
    """Per-run device inputs of a step (stacked: leading runs axis R).

    Attributes:
      key: [2] uint32 raw key data of `runs.run_key`.
      emotion: [] int32 index into `constants.EMOTIONS` of the detector.
      alpha: [] float32 the run's α (NaN when the variant has none).
      train_idx: [N_train_max] int32 dataset rows of the training folds.
      n_train: [] int32 valid entries of `train_idx`.
      refs: frozen parameters of the reference variants, by name.
    """

    key: jax.Array
    emotion: jax.Array
    alpha: jax.Array
    train_idx: jax.Array
    n_train: jax.Array
    refs: dict[str, PyTree]


@dataclasses.dataclass(frozen=True)
class VariantOutput:
    """What training one variant produced, on the host.

    Attributes:
      runs: the R run specs.
      arrays: their `RunArrays` (test rows in `arrays.test_idx`).
      logits: [R, N_test_max] test-fold logits (valid up to `arrays.n_test`).
      embeddings: [R, N_test_max, D] test-fold embeddings z.
      loss_history: [R, epochs] mean training loss per epoch.
      params: final parameters, every leaf [R, ...].
      trace: per traced term, [R, epochs * steps_per_epoch] values in
        training order.
    """

    runs: list[RunSpec]
    arrays: RunArrays
    logits: np.ndarray
    embeddings: np.ndarray
    loss_history: np.ndarray
    params: PyTree
    trace: dict[str, np.ndarray]


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


def gather_batch(
    data: Dataset, rows: jax.Array, emotion: jax.Array
) -> objectives.Batch:
    """The batch of dataset `rows` [B] for the `emotion` detector."""
    return objectives.Batch(
        x=data.features[rows],
        y=(data.label[rows] == emotion).astype(jnp.float32),
        speaker_group=data.speaker_group[rows],
        rater_group=data.rater_group[rows],
        in_s2=data.in_s2[rows],
        num_speaker_groups=data.num_speaker_groups,
        num_rater_groups=data.num_rater_groups,
    )


def train_step(
    carry: tuple[PyTree, PyTree, PyTree],
    batch: objectives.Batch,
    dropout_key: jax.Array,
    run: RunInputs,
    *,
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    objective: objectives.Objective,
    cfg: ml_collections.ConfigDict,
) -> tuple[tuple[PyTree, PyTree, PyTree], objectives.Terms]:
    """One optimiser step of one run.

    The frozen reference models (`run.refs`) see the batch without dropout;
    their outputs reach the objective as `ctx.refs` and get no gradient.

    Args:
      carry: (params, opt_state, objective_state).
      batch: the step's batch.
      dropout_key: PRNG key of this run and step.
      run: the run's inputs (α, reference parameters).
      model, tx, objective, cfg: the static setup.

    Returns:
      The new carry and the step's terms (scalars).
    """
    params, opt_state, obj_state = carry
    refs = {
        name: jax.lax.stop_gradient(
            model.apply({"params": ref}, batch.x, train=False)
        )
        for name, ref in run.refs.items()
    }
    ctx = objectives.Context(refs=refs, alpha=run.alpha)

    def loss_fn(p):
        out = model.apply(
            {"params": p},
            batch.x,
            train=True,
            grl_scale=cfg.loss.grl_scale,
            rngs={"dropout": dropout_key},
        )
        value, terms, new_state = objective(out, batch, cfg, obj_state, ctx)
        return value, (terms, new_state)

    grads, (terms, obj_state) = jax.grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state, obj_state), terms


def run_epoch(
    state: TrainState,
    run: RunInputs,
    data: Dataset,
    epoch: jax.Array,
    *,
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    objective: objectives.Objective,
    cfg: ml_collections.ConfigDict,
    steps_per_epoch: int,
) -> tuple[TrainState, objectives.Terms]:
    """One epoch of one run: `lax.scan` of `train_step` over its batches.

    Returns:
      The new state and every term of every step, [steps_per_epoch] each.
    """
    batch_size = cfg.train.batch_size
    key = jax.random.fold_in(
        jax.random.wrap_key_data(run.key), 1
    )  # stream 0 initialises the parameters
    key = jax.random.fold_in(key, epoch)
    order = epoch_order(
        jax.random.fold_in(key, 0),
        run.n_train,
        run.train_idx.shape[0],
        steps_per_epoch * batch_size,
    )
    rows = run.train_idx[order].reshape(steps_per_epoch, batch_size)

    def step(carry, xs):
        step_rows, step_index = xs
        batch = gather_batch(data, step_rows, run.emotion)
        dropout_key = jax.random.fold_in(key, step_index + 1)
        return train_step(
            carry,
            batch,
            dropout_key,
            run,
            model=model,
            tx=tx,
            objective=objective,
            cfg=cfg,
        )

    (params, opt_state, obj_state), terms = jax.lax.scan(
        step,
        (state.params, state.opt_state, state.objective_state),
        (rows, jnp.arange(steps_per_epoch)),
    )
    new_state = TrainState(
        params=params,
        opt_state=opt_state,
        objective_state=obj_state,
        loss_history=state.loss_history.at[epoch].set(jnp.mean(terms["loss"])),
        trace={
            name: values.at[epoch].set(terms[name])
            for name, values in state.trace.items()
        },
    )
    return new_state, terms


def make_epoch_fn(
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    objective: objectives.Objective,
    cfg: ml_collections.ConfigDict,
    steps_per_epoch: int,
):
    """Builds `epoch(state, runs, data, epoch) -> (state, step_terms)`.

    `run_epoch` vmapped over the runs of one chunk (leading axis [C] of
    `state` and `runs`, all on one device, `data` on that device) and
    jitted with the state donated. It runs where its inputs are: `fit`
    calls it once per chunk, so it compiles once per device (one program
    for one device, never partitioned: Stack's docstring says why).
    `epoch` is a traced int32, so it compiles once. `step_terms` maps each
    term to [C, steps_per_epoch].
    """
    one_run = functools.partial(
        run_epoch,
        model=model,
        tx=tx,
        objective=objective,
        cfg=cfg,
        steps_per_epoch=steps_per_epoch,
    )
    return jax.jit(
        jax.vmap(one_run, in_axes=(0, 0, None, None)), donate_argnums=0
    )


def create_train_state(
    key_data: jax.Array,
    init_params: PyTree | None,
    *,
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    cfg: ml_collections.ConfigDict,
    variant: variants_lib.Variant,
    feature_dim: int,
    steps_per_epoch: int,
) -> TrainState:
    """The state of one run before its first step.

    Args:
      key_data: [2] uint32 raw key data of the run; stream 0 of it draws
        the initial parameters when `init_params` is None.
      init_params: parameters to start from (the anchor's trained ones,
        `Variant.init_from`), or None for a random initialisation.
      model, tx, cfg, variant: the static setup.
      feature_dim: input width H.
      steps_per_epoch: steps of every epoch (sizes the traces).

    Returns:
      A `TrainState` with a fresh optimiser state.
    """
    if init_params is None:
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), 0)
        init_params = model.init(
            {"params": key}, jnp.zeros((1, feature_dim)), train=False
        )["params"]
    epochs = cfg.train.epochs
    return TrainState(
        params=init_params,
        opt_state=tx.init(init_params),
        objective_state=variants_lib.init_state(variant, cfg),
        loss_history=jnp.full((epochs,), jnp.nan, jnp.float32),
        trace={
            name: jnp.full((epochs, steps_per_epoch), jnp.nan, jnp.float32)
            for name in variant.traced
        },
    )


def runs_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named "runs" over the given devices, in their order.

    Default: every device of the run (`jax.devices()`: the local ones, or
    those of every process when `jax.distributed` joined several), taken
    round-robin over the processes (the first device of each process, then
    the second, ...): chunks fill the mesh in order, so a variant with
    fewer chunks than devices still gives every process work, and no
    process compiles a program for a second device while another has none.
    """
    if devices is None:
        by_process: dict[int, list[jax.Device]] = {}
        for device in sorted(jax.devices(), key=lambda d: d.id):
            by_process.setdefault(device.process_index, []).append(device)
        devices = [
            device
            for rank in itertools.zip_longest(*by_process.values())
            for device in rank
            if device is not None
        ]
    return Mesh(np.asarray(devices), ("runs",))


CPU_RUNS_PER_CHUNK = 8
"""`config.train.runs_per_chunk=0` (auto) on CPU: chunks of 8 trained
Fair_spk at 1.03x and DNN at 1.21x the rate of one chunk of all 64 runs
(benchmarks/chunking.py, docs/benchmarks/chunking.txt), and a small chunk
wastes little on padding."""


def runs_per_chunk(
    cfg: ml_collections.ConfigDict, num_runs: int, mesh: Mesh
) -> int:
    """Runs one device trains in one call (`config.train.runs_per_chunk`).

    0 (auto): `CPU_RUNS_PER_CHUNK` on CPU; on an accelerator all of a
    device's runs (ceil(R / devices)), the fastest there, at the cost of
    results that depend on the device count.
    """
    chosen = int(cfg.train.runs_per_chunk)
    if chosen > 0:
        return chosen
    if mesh.devices.flat[0].platform == "cpu":
        return CPU_RUNS_PER_CHUNK
    return max(1, math.ceil(num_runs / mesh.devices.size))


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One call's worth of runs on one device.

    Attributes:
      device: where it trains.
      index: its place j in the stack: slots [j·C, (j+1)·C) of the padded
        runs axis.
      active: whether it holds a real run (chunks of padding alone are
        never trained).
    """

    device: jax.Device
    index: int
    active: bool


@dataclasses.dataclass(frozen=True)
class Stack:
    """The static plan of one variant's runs on a mesh.

    The runs axis is cut into chunks of C runs (`runs_per_chunk`): chunk j
    holds slots [j·C, (j+1)·C) and lives on device j // K of the mesh, K
    chunks a device. Every chunk trains through the same one-device
    program, so a run's arithmetic depends on C (fixed by the config),
    never on the device count: that count only decides which device trains
    which chunk. (Nor, as tested, on the run's slot in its chunk or on its
    chunk-mates: a run alone equals the same run in a stack.) Between calls the
    chunks are arrays on their devices (`split`); for checkpoints and
    results they are joined into global arrays [R_padded, ...] whose runs
    axis is sharded over the mesh in the same order (`join`, `put`, `get`).

    Attributes:
      variant: the registry entry.
      runs: the R runs.
      arrays: their `RunArrays`.
      pad_index: [R_padded] run each stacked slot holds; R_padded = K ×
        devices × C and the copies (of run 0) are dropped.
      steps_per_epoch: ceil(largest training fold / batch size).
      mesh: the 1-D "runs" mesh.
      chunk: C, runs per chunk.
    """

    variant: variants_lib.Variant
    runs: list[RunSpec]
    arrays: RunArrays
    pad_index: np.ndarray
    steps_per_epoch: int
    mesh: Mesh
    chunk: int

    @property
    def num_runs(self) -> int:
        return len(self.runs)

    @property
    def chunks_per_device(self) -> int:
        """K: chunks each device of the mesh holds."""
        return len(self.pad_index) // (self.mesh.devices.size * self.chunk)

    @property
    def sharded(self) -> NamedSharding:
        """Leading runs axis split over the mesh."""
        return NamedSharding(self.mesh, PartitionSpec("runs"))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def put(self, tree: PyTree) -> PyTree:
        """Host arrays with a leading [R] axis → padded, sharded arrays.

        Each process places the shards of its own devices only.
        """
        return distributed.put(
            jax.tree.map(lambda x: np.asarray(x)[self.pad_index], tree),
            self.sharded,
        )

    def get(self, tree: PyTree) -> PyTree:
        """Sharded arrays → host NumPy of the R real runs (every process)."""
        return jax.tree.map(
            lambda x: x[: self.num_runs], distributed.gather(tree)
        )

    def local_chunks(self) -> list[Chunk]:
        """This process's chunks, device by device in mesh order."""
        k = self.chunks_per_device
        me = jax.process_index()
        return [
            Chunk(
                device,
                position * k + slot,
                (position * k + slot) * self.chunk < self.num_runs,
            )
            for position, device in enumerate(self.mesh.devices.flat)
            if device.process_index == me
            for slot in range(k)
        ]

    def split(self, tree: PyTree) -> list[PyTree]:
        """Sharded arrays [R_padded, ...] → this process's chunks.

        Returns:
          One tree of one-device arrays [C, ...] per `local_chunks` entry.
        """
        c, k = self.chunk, self.chunks_per_device
        chunks = self.local_chunks()

        def pieces(x):
            on = _by_device(x)
            if k == 1:
                return [on[ch.device] for ch in chunks]
            return [
                on[ch.device][(ch.index % k) * c : (ch.index % k + 1) * c]
                for ch in chunks
            ]

        leaves, treedef = jax.tree.flatten(tree)
        per_leaf = [pieces(x) for x in leaves]
        return [
            jax.tree.unflatten(treedef, [p[i] for p in per_leaf])
            for i in range(len(chunks))
        ]

    def join(self, parts: list[PyTree]) -> PyTree:
        """This process's chunks (as `split` gives them) → sharded arrays."""
        chunks = self.local_chunks()

        def one(*leaves):
            on: dict[Any, list[jax.Array]] = {}
            for ch, leaf in zip(chunks, leaves, strict=True):
                on.setdefault(ch.device, []).append(leaf)
            arrays = [
                pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces)
                for pieces in on.values()
            ]
            shape = (len(self.pad_index), *arrays[0].shape[1:])
            return jax.make_array_from_single_device_arrays(
                shape, self.sharded, arrays
            )

        return jax.tree.map(one, *parts)

    def on_devices(self, tree: PyTree) -> dict[Any, PyTree]:
        """A replicated tree → its copy on each local device of the mesh."""
        leaves, treedef = jax.tree.flatten(tree)
        copies = [_by_device(x) for x in leaves]
        return {
            ch.device: jax.tree.unflatten(
                treedef, [c[ch.device] for c in copies]
            )
            for ch in self.local_chunks()
        }

    def collect(self, parts: list[PyTree | None], like: PyTree) -> PyTree:
        """Per-chunk outputs → host NumPy of the R real runs (every process).

        Args:
          parts: one tree per `local_chunks` entry; None for inactive ones.
          like: `jax.ShapeDtypeStruct`s of one chunk's tree (fills the
            inactive chunks).
        """
        chunks = self.local_chunks()
        if distributed.process_count() == 1:
            active = [
                p for p, ch in zip(parts, chunks, strict=True) if ch.active
            ]
            return jax.tree.map(
                lambda *xs: np.concatenate([np.asarray(x) for x in xs])[
                    : self.num_runs
                ],
                *active,
            )
        filled = [
            p if p is not None else zeros_on(ch.device, like)
            for p, ch in zip(parts, chunks, strict=True)
        ]
        return self.get(self.join(filled))


def _by_device(x: jax.Array) -> dict[jax.Device, jax.Array]:
    """This process's shards of `x`, by device."""
    return {shard.device: shard.data for shard in x.addressable_shards}


def zeros_on(device: jax.Device, like: PyTree) -> PyTree:
    """Zeros shaped as `like` (`jax.ShapeDtypeStruct`s), on `device`: what
    stands for a chunk of padding alone, which is never computed."""
    return jax.tree.map(
        lambda s: jax.device_put(np.zeros(s.shape, s.dtype), device), like
    )


def plan(
    variant: str,
    runs: list[RunSpec],
    fold: np.ndarray,
    cfg: ml_collections.ConfigDict,
    mesh: Mesh | None = None,
) -> Stack:
    """Lays out the runs of `variant` as chunks over `mesh`."""
    mesh = runs_mesh() if mesh is None else mesh
    num_devices = mesh.devices.size
    arrays = build_run_arrays(runs, fold, tuple(cfg.data.classes))
    chunk = runs_per_chunk(cfg, len(runs), mesh)
    per_device = math.ceil(math.ceil(len(runs) / chunk) / num_devices)
    padded = per_device * num_devices * chunk
    pad_index = np.concatenate(
        [np.arange(len(runs)), np.zeros(padded - len(runs), np.int64)]
    )
    return Stack(
        variant=variants_lib.get(variant),
        runs=list(runs),
        arrays=arrays,
        pad_index=pad_index,
        steps_per_epoch=max(
            1, math.ceil(int(arrays.n_train.max()) / cfg.train.batch_size)
        ),
        mesh=mesh,
        chunk=chunk,
    )


def _checkpoint_manager(checkpoint_dir) -> ocp.CheckpointManager:
    # orbax writes the folder's content: recorded as a whole (a workdir's
    # --overwrite removes it, fairser_jax.workdir).
    fileio.notify_written(checkpoint_dir, tree=True)
    return ocp.CheckpointManager(
        pathlib.Path(checkpoint_dir).absolute(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, enable_async_checkpointing=False
        ),
    )


class CheckpointError(ValueError):
    """A checkpoint to resume from cannot be read; says how to go on."""


CHUNK_FILE = "chunk.json"
"""Beside a variant's orbax steps: the C its runs were trained in. A stack
of the same padded size restores whatever C, but another C is another
program (the runner's docstring): the resumed run would not be the
uninterrupted one, so it is refused."""


def _retrain(stack: Stack) -> str:
    """How to go on when a variant's checkpoint cannot be resumed."""
    return (
        f"to train {stack.variant.name} again from epoch 0 with --resume "
        "(finished variants are kept)"
    )


def _check_chunk(stack: Stack, manager: ocp.CheckpointManager, latest) -> None:
    """Records `stack.chunk` (a fresh start) or checks it (a resume)."""
    path = pathlib.Path(manager.directory) / CHUNK_FILE
    if latest is None:
        if distributed.is_primary():
            fileio.atomic_write_text(
                path, json.dumps({"runs_per_chunk": stack.chunk}) + "\n"
            )
        return
    try:
        recorded = json.loads(path.read_text("utf-8"))["runs_per_chunk"]
    except FileNotFoundError:
        return  # written before chunks were recorded
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{path} is damaged ({type(e).__name__}: {e}). Delete "
            f"{manager.directory} {_retrain(stack)}."
        ) from None
    if recorded != stack.chunk:
        raise CheckpointError(
            f"{stack.variant.name}: the checkpoint {manager.directory}/"
            f"{latest} trained its runs in chunks of {recorded}; here they "
            f"would be chunks of {stack.chunk} (config.train.runs_per_chunk, "
            "whose auto value on an accelerator is the runs per device), "
            "another program, whose arithmetic is not the uninterrupted "
            "run's. Resume on as many devices as it started on, or delete "
            f"that folder {_retrain(stack)}."
        )


def init_or_restore(
    stack: Stack,
    cfg: ml_collections.ConfigDict,
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    feature_dim: int,
    *,
    init_params: PyTree | None = None,
    manager: ocp.CheckpointManager | None = None,
    resume: bool = False,
) -> tuple[TrainState, int]:
    """The stacked state to train from, and the first epoch to run.

    Args:
      stack: the plan.
      cfg, model, tx: the static setup.
      feature_dim: input width H.
      init_params: host parameters [R, ...] to start each run from (the
        anchor of `Variant.init_from`), or None for random initialisation.
      manager: the variant's checkpoint manager, or None.
      resume: restore the latest checkpoint of `manager` if there is one.

    Returns:
      (state, start_epoch): 0 unless restored.
    """
    init = functools.partial(
        create_train_state,
        model=model,
        tx=tx,
        cfg=cfg,
        variant=stack.variant,
        feature_dim=feature_dim,
        steps_per_epoch=stack.steps_per_epoch,
    )
    keys = stack.split(stack.put(stack.arrays.key))
    anchors = (
        [None] * len(keys)
        if init_params is None
        else stack.split(stack.put(init_params))
    )
    init_chunk = jax.jit(
        jax.vmap(init, in_axes=(0, None if init_params is None else 0))
    )
    # The joined state needs every chunk; one of padding alone is never
    # trained, so zeros stand for it (no program compiled on a device
    # that has nothing to train).
    like = jax.eval_shape(init_chunk, keys[0], anchors[0])
    state = stack.join(
        [
            init_chunk(k, a) if ch.active else zeros_on(ch.device, like)
            for k, a, ch in zip(
                keys, anchors, stack.local_chunks(), strict=True
            )
        ]
    )
    latest = manager.latest_step() if (manager and resume) else None
    if manager is not None:
        _check_chunk(stack, manager, latest)
    if latest is None:
        if manager is not None and resume:
            logging.warning(
                "%s: --resume found no checkpoint in %s; training it from "
                "epoch 0.",
                stack.variant.name,
                manager.directory,
            )
        return state, 0
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        state,
    )
    try:
        state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types
        reason = str(e).strip().splitlines()[0][:200] if str(e) else type(e)
        raise CheckpointError(
            f"{stack.variant.name}: the checkpoint {manager.directory}/"
            f"{latest} is damaged, unreadable or laid out for another "
            "device count or config.train.runs_per_chunk "
            f"({reason}). Delete that folder {_retrain(stack)}, or start "
            "over with --overwrite."
        ) from None
    logging.info(
        "%s: resumed from epoch %d of %d",
        stack.variant.name,
        latest,
        cfg.train.epochs,
    )
    return state, int(latest)


def run_inputs(stack: Stack, refs: dict[str, PyTree] | None) -> RunInputs:
    """The stack's per-run step inputs, padded and sharded.

    Args:
      stack: the plan.
      refs: for each of the variant's references, its trained parameters
        [R, ...] aligned with `stack.runs`.
    """
    refs = refs or {}
    missing = [r for r in stack.variant.references if r not in refs]
    if missing:
        raise ValueError(
            f"{stack.variant.name} reads the trained {missing} as frozen "
            "references; pass their parameters (refs=...)."
        )
    a = stack.arrays
    return stack.put(
        RunInputs(
            key=a.key,
            emotion=a.emotion,
            alpha=a.alpha,
            train_idx=a.train_idx,
            n_train=a.n_train,
            refs={name: refs[name] for name in stack.variant.references},
        )
    )


def _first_bad(step_losses: np.ndarray) -> tuple[int, int]:
    bad = np.argwhere(~np.isfinite(step_losses))
    r, s = bad[0]
    return int(r), int(s)


def train_epoch(
    stack: Stack,
    epoch_fn,
    states: list[TrainState],
    run_chunks: list[RunInputs],
    data_on: dict[Any, Dataset],
    epoch: int,
) -> tuple[list[TrainState], np.ndarray]:
    """One epoch of every chunk of this process (`epoch_fn` per chunk).

    Args:
      stack: the plan.
      epoch_fn: `make_epoch_fn`'s function.
      states, run_chunks: per `stack.local_chunks()` entry, the chunk's
        state (donated) and inputs.
      data_on: the dataset on each local device (`Stack.on_devices`).
      epoch: the epoch's index.

    Returns:
      The new states, and the step losses [R, steps_per_epoch] of every
      real run (host, every process).
    """
    new, losses = [], []
    for state, run, ch in zip(
        states, run_chunks, stack.local_chunks(), strict=True
    ):
        if not ch.active:
            new.append(state)
            losses.append(None)
            continue
        state, terms = epoch_fn(
            state, run, data_on[ch.device], jnp.asarray(epoch, jnp.int32)
        )
        new.append(state)
        losses.append(terms["loss"])
    like = jax.ShapeDtypeStruct(
        (stack.chunk, stack.steps_per_epoch), jnp.float32
    )
    return new, stack.collect(losses, like)


def fit(
    stack: Stack,
    states: list[TrainState],
    start_epoch: int,
    run_chunks: list[RunInputs],
    data: Dataset,
    cfg: ml_collections.ConfigDict,
    model: models.FairSERModel,
    tx: optax.GradientTransformation,
    *,
    manager: ocp.CheckpointManager | None = None,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> TrainState | None:
    """The epoch loop: train, guard against NaN, report, checkpoint.

    Args:
      stack: the plan.
      states: this process's chunks of the state (`stack.split`), donated
        to the first epoch: the caller keeps no use of them.
      start_epoch: the first epoch to train (0, or a checkpoint's).
      run_chunks: this process's chunks of the `RunInputs` (`stack.split`).
      data: the dataset, replicated over the mesh.
      cfg, model, tx: as `make_epoch_fn`.
      manager: saves every `cfg.train.checkpoint_every` epochs, at the end
        and when a stop is requested; None: no checkpoints.
      progress: show a tqdm bar.
      stop_after_epoch: return None after this epoch (tests' killed job).

    Returns:
      The final state, or None when stopped by `stop_after_epoch`.

    Raises:
      NonFiniteLossError: naming the run and step whose loss is not finite.
    """
    epochs = cfg.train.epochs
    steps = stack.steps_per_epoch
    epoch_fn = make_epoch_fn(
        model, tx, variants_lib.objective(stack.variant), cfg, steps
    )
    data_on = stack.on_devices(data)
    bar = progress_lib.bar(
        range(start_epoch, epochs),
        enabled=progress,
        desc=f"{stack.variant.name} ({stack.num_runs} runs)",
        unit="epoch",
        initial=start_epoch,
        total=epochs,
    )
    with distributed.training():
        try:
            for epoch in bar:
                tic = time.perf_counter()
                states, step_losses = train_epoch(
                    stack, epoch_fn, states, run_chunks, data_on, epoch
                )
                seconds = time.perf_counter() - tic
                if not np.all(np.isfinite(step_losses)):
                    r, s = _first_bad(step_losses)
                    raise NonFiniteLossError(
                        f"Non-finite training loss ({step_losses[r, s]}) in "
                        f"run {stack.runs[r].name} at epoch {epoch}, step {s} "
                        f"(global step {epoch * steps + s}). Lower the "
                        "learning rate or check the features for outliers; "
                        "the last checkpoint is kept intact."
                    )
                bar.set_postfix(
                    loss=f"{step_losses.mean():.4f}",
                    model_steps_per_s=f"{stack.num_runs * steps / seconds:.0f}",
                )
                done = epoch + 1
                stop = distributed.stop_requested()
                if manager is not None and (
                    done % cfg.train.checkpoint_every == 0
                    or done == epochs
                    or stop
                ):
                    if manager.latest_step() != done:
                        manager.save(
                            done, args=ocp.args.StandardSave(stack.join(states))
                        )
                    manager.wait_until_finished()
                if stop:
                    raise distributed.StopRequested(
                        f"stopped by SIGTERM after epoch {done} of {epochs} of "
                        f"{stack.variant.name}"
                        + (", saved" if manager is not None else "")
                        + "; continue with --resume."
                    )
                if stop_after_epoch is not None and done >= stop_after_epoch:
                    return None
        finally:
            bar.close()
    return stack.join(states)


def make_eval_fn(model: models.FairSERModel):
    """`eval(params, test_idx, data) -> (logits[C, T], z[C, T, D])`, for one
    chunk on one device (as `make_epoch_fn`)."""

    def one_run(params, test_idx, data: Dataset):
        out = model.apply(
            {"params": params}, data.features[test_idx], train=False
        )
        return out.logits, out.embeddings

    return jax.jit(jax.vmap(one_run, in_axes=(0, 0, None)))


def evaluate(
    stack: Stack,
    state: TrainState,
    data: Dataset,
    model: models.FairSERModel,
) -> VariantOutput:
    """Test-fold logits and embeddings of every run, and its final state."""
    eval_fn = make_eval_fn(model)
    chunks = stack.local_chunks()
    params = stack.split(state.params)
    test_idx = stack.split(stack.put(stack.arrays.test_idx))
    data_on = stack.on_devices(data)
    outs = [
        eval_fn(p, t, data_on[ch.device]) if ch.active else None
        for p, t, ch in zip(params, test_idx, chunks, strict=True)
    ]
    logits, embeddings = stack.collect(
        outs, jax.eval_shape(eval_fn, params[0], test_idx[0], data)
    )
    host = stack.get(
        {
            "loss_history": state.loss_history,
            "params": state.params,
            "trace": state.trace,
        }
    )
    return VariantOutput(
        runs=stack.runs,
        arrays=stack.arrays,
        logits=logits,
        embeddings=embeddings,
        loss_history=host["loss_history"],
        params=host["params"],
        trace={
            name: values.reshape(stack.num_runs, -1)
            for name, values in host["trace"].items()
        },
    )


def train_variant(
    variant: str,
    runs: list[RunSpec],
    data: Dataset,
    fold: np.ndarray,
    cfg: ml_collections.ConfigDict,
    *,
    init_params: PyTree | None = None,
    refs: dict[str, PyTree] | None = None,
    checkpoint_dir: str | pathlib.Path | None = None,
    resume: bool = False,
    mesh: Mesh | None = None,
    progress: bool = True,
    stop_after_epoch: int | None = None,
) -> VariantOutput | None:
    """Trains every run of `variant` (chunk by chunk, `plan`) and evaluates
    its test folds.

    Args:
      variant: a name of `fairser_jax.train.variants.REGISTRY`.
      runs: the runs to train (all of this variant).
      data: the device dataset.
      fold: [N] host fold index of every dataset row.
      cfg: the full config (uses `model`, `loss`, `train`, `two_sided`).
      init_params: parameters [R, ...] aligned with `runs` to start from
        (the trained `Variant.init_from` of the same emotion, fold and
        seed); None: random initialisation.
      refs: for each of `Variant.references`, the trained parameters
        [R, ...] aligned with `runs`, read frozen during training.
      checkpoint_dir: where orbax checkpoints go (every
        `cfg.train.checkpoint_every` epochs and at the end); None: none.
      resume: continue from the latest checkpoint in `checkpoint_dir`.
      mesh: 1-D mesh with axis "runs" (default: every device of the run).
      progress: show a tqdm bar.
      stop_after_epoch: stop (without evaluating) after this many epochs;
        simulates a killed job in tests. Returns None then.

    Returns:
      The `VariantOutput` of the R runs (None after `stop_after_epoch`).

    Raises:
      NonFiniteLossError: naming the run and step whose loss is not finite.
    """
    stack = plan(variant, runs, fold, cfg, mesh)
    if stack.variant.init_from is not None and init_params is None:
        raise ValueError(
            f"{variant} starts from the trained {stack.variant.init_from}; "
            "pass its parameters (init_params=...)."
        )
    data = distributed.put(data, stack.replicated)
    inputs = run_inputs(stack, refs)
    model = models.model_from_config(
        cfg.model, num_rater_groups=data.num_rater_groups
    )
    tx = make_optimizer(cfg)
    manager = (
        None if checkpoint_dir is None else _checkpoint_manager(checkpoint_dir)
    )
    state, start_epoch = init_or_restore(
        stack,
        cfg,
        model,
        tx,
        data.features.shape[1],
        init_params=init_params,
        manager=manager,
        resume=resume,
    )
    # The chunks are copies of the global arrays' shards when a device
    # holds several (K > 1): the global arrays go before training, so a
    # variant's state and inputs are held once, not twice.
    states, run_chunks = stack.split(state), stack.split(inputs)
    del state, inputs
    state = fit(
        stack,
        states,
        start_epoch,
        run_chunks,
        data,
        cfg,
        model,
        tx,
        manager=manager,
        progress=progress,
        stop_after_epoch=stop_after_epoch,
    )
    if state is None:
        return None
    return evaluate(stack, state, data, model)


# ------------------------------------------------------ memory planning


def _available_bytes(device) -> tuple[int, str] | None:
    """Memory one device can give the trainer, and where it was read."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory stats
        pass
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{device.platform} memory limit"
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available host RAM"
    except OSError:
        pass
    return None


def batch_memory_lower_bound(
    cfg: ml_collections.ConfigDict, variant: str, runs_per_call: int
) -> int:
    """Bytes a training step of `variant` needs at least, per device.

    A lower bound, so it never refuses a config that fits: the [B, B]
    float32 matrices that must coexist per run, times the runs one call
    trains on a device (a chunk). L_D (debiased Sinkhorn, ott-jax) builds
    the x–y, x–x and y–y cost matrices; L_cl one similarity matrix. A
    variant that compares no utterances within a batch (`Variant.pairwise`
    False: DNN) has none.
    """
    matrices = 3 if variants_lib.get(variant).pairwise else 0
    return runs_per_call * matrices * cfg.train.batch_size**2 * 4


def check_fits(
    cfg: ml_collections.ConfigDict,
    info: DatasetInfo,
    feature_dim: int,
    mesh: Mesh | None,
) -> None:
    """Checks what needs the data, before any training.

    Raises:
      ValueError: a batch is larger than a fold's training set, or a
        variant's batches cannot fit in the device's memory; the message
        names `config.train.batch_size` and the figures.
    """
    del feature_dim  # the [B, B] terms dominate; see batch_memory_lower_bound
    folds = np.asarray(info.fold)
    smallest = min(int(np.sum(folds != f)) for f in cfg.folds)
    if cfg.train.batch_size > smallest:
        raise ValueError(
            f"config.train.batch_size is {cfg.train.batch_size}, larger "
            f"than the {smallest} training utterances of the smallest "
            "fold: every batch would repeat utterances. Use a batch of at "
            f"most {smallest}."
        )
    mesh = runs_mesh() if mesh is None else mesh
    available = _available_bytes(jax.local_devices()[0])
    if available is None:
        return
    limit, where = available
    for variant in variants_lib.training_order(cfg.variants):
        runs = len(variant_runs(cfg, variant))
        # A call trains a whole chunk, padding included.
        per_call = runs_per_chunk(cfg, runs, mesh)
        need = batch_memory_lower_bound(cfg, variant, per_call)
        if need > limit:
            raise ValueError(
                f"config.train.batch_size={cfg.train.batch_size} cannot fit: "
                f"{variant} needs at least {need / 2**30:.1f} GiB per "
                f"device for its [batch, batch] loss matrices ({per_call} "
                f"run(s) x 3 x {cfg.train.batch_size}^2 float32), and the "
                f"{where} is {limit / 2**30:.1f} GiB. Use a smaller batch "
                "or fewer runs per call (config.train.runs_per_chunk)."
            )

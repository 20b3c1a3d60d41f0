"""Corpus → study sets → features → all variants → workdir files → report.

The whole pipeline, above the stages it orchestrates (`data`, `wav2vec2`,
`train`, `report`). `train(cfg, workdir)` is what `python -m
fairser_jax.train` runs and the training half of `python -m
fairser_jax.main`; `run` is all of `main`; a notebook can call either.

Workdir layout::

    config.json           the resolved config of the run
    results.json          study sets, per-result metrics, α histograms
    predictions.csv       one row per (result, utterance), every variant
    alpha_trace.npz       α and D of every batch of every Proposed run (Fig. 3b)
    predictions/<v>.csv   the same, per variant (written when <v> finishes)
    params/<v>.npz        final parameters of <v>'s runs
    training/<v>.npz      run names and per-epoch training loss
    embeddings/*.npz      out-of-fold test embeddings (Fig. 2)
    checkpoints/<v>/      orbax checkpoint of <v> while it trains (removed
                          once params/<v>.npz and predictions/<v>.csv exist)
    detector.json         what `fairser_jax.predict` needs besides params/:
    normalization.npz     the feature manifest, the config, and the average
                          training speaker's feature mean and SD

With several processes (`fairser_jax.distributed`), every process reads
the corpus and the feature store and trains its shards of every stack;
process 0 alone makes the corpus and the store and writes every file
above, the others waiting for it where they need its files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib
import re
import shutil
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

import fairser_jax
from fairser_jax import config as config_lib
from fairser_jax import detector as detector_lib
from fairser_jax import distributed, fileio, losses, report
from fairser_jax import workdir as workdir_lib
from fairser_jax.data import corpus as corpus_lib
from fairser_jax.data import demo_corpus, layouts, study_sets
from fairser_jax.data import features as features_lib
from fairser_jax.train import dataset as dataset_lib
from fairser_jax.train import outputs, runner
from fairser_jax.train import runs as runs_lib
from fairser_jax.train import variants as variants_lib
from fairser_jax.wav2vec2 import extraction

# Moved to the modules of their concept; kept here under their old names.
make_training_table = dataset_lib.make_training_table
variant_runs = runs_lib.variant_runs
batch_memory_lower_bound = runner.batch_memory_lower_bound
check_fits = runner.check_fits
assemble = outputs.assemble


class ConfigMismatchError(ValueError):
    """`--resume` with a config that differs from the workdir's."""


def corpus_dir(cfg: ml_collections.ConfigDict, workdir: pathlib.Path):
    """The corpus root: `cfg.data.corpus`, else `<workdir>/corpus`."""
    return pathlib.Path(cfg.data.corpus or workdir_lib.Layout(workdir).corpus)


def rater_gender_path(
    cfg: ml_collections.ConfigDict, corpus: pathlib.Path
) -> pathlib.Path | None:
    """`cfg.data.rater_gender`, else `<corpus>/rater_gender.json` if any."""
    if cfg.data.rater_gender:
        return pathlib.Path(cfg.data.rater_gender)
    default = corpus / "rater_gender.json"
    return default if default.exists() else None


def features_path(cfg: ml_collections.ConfigDict, workdir: pathlib.Path):
    """`cfg.features.path`, else `<workdir>/features.npz`."""
    return pathlib.Path(
        cfg.features.path or workdir_lib.Layout(workdir).features
    )


def read_corpus(
    cfg: ml_collections.ConfigDict, corpus: pathlib.Path
) -> corpus_lib.Corpus:
    """Reads the corpus in the layout `cfg.data.format` names (or detects)."""
    return layouts.read(
        corpus,
        format=cfg.data.format,
        rater_gender=rater_gender_path(cfg, corpus),
        classes=tuple(cfg.data.classes),
        speaker_attribute=cfg.data.speaker_attribute,
        rater_attribute=cfg.data.rater_attribute,
        num_folds=cfg.data.num_folds,
    )


def load_study(cfg: ml_collections.ConfigDict, corpus: pathlib.Path):
    """Reads the corpus and builds S1/S2 (paper §2.1.1, Table 1).

    Returns:
      (`fairser_jax.data.corpus.Corpus`, `study_sets.StudySets`).

    Raises:
      ValueError: the corpus has no utterance of a configured fold, or a
        speaker attribute with fewer than two groups.
    """
    data = read_corpus(cfg, corpus)
    if data.format == "iemocap" and cfg.data.speaker_attribute != "gender":
        raise ValueError(
            f"config.data.speaker_attribute is "
            f"{cfg.data.speaker_attribute!r}, but an IEMOCAP corpus has "
            "speaker gender only; export it as a manifest (python -m "
            "fairser_jax.export_manifest) and add columns there."
        )
    if data.format == "iemocap" and cfg.data.rater_attribute != "gender":
        raise ValueError(
            f"config.data.rater_attribute is {cfg.data.rater_attribute!r}, "
            "but an IEMOCAP corpus has rater gender only (from "
            "--config.data.rater_gender); use a manifest for other rater "
            "attributes."
        )
    missing = [f for f in cfg.folds if f >= data.num_folds]
    if missing:
        raise ValueError(
            f"config.folds has {missing}, but the corpus {corpus} has "
            f"{data.num_folds} fold(s) (0..{data.num_folds - 1}); pass "
            f"--config.folds="
            f"{','.join(str(f) for f in range(data.num_folds))} or fewer."
        )
    unused = [f for f in range(data.num_folds) if f not in cfg.folds]
    if unused:
        logging.warning(
            "the corpus %s has %d folds but config.folds=%s: fold(s) %s are "
            "never tested, so the metrics cover part of S1; pass "
            "--config.folds=%s to use them all.",
            corpus,
            data.num_folds,
            tuple(cfg.folds),
            unused,
            ",".join(str(f) for f in range(data.num_folds)),
        )
    study = study_sets.build(
        data,
        classes=tuple(cfg.data.classes),
        rater_attribute=cfg.data.rater_attribute,
        require_both_genders=cfg.data.require_both_genders,
    )
    return data, study


# (field, test, what it must be): checked before any work, so a value the
# losses cannot use fails in a second, naming the field, not after DNN.
_BOUNDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("train.epochs", lambda v: v >= 1, "an int >= 1"),
    ("train.batch_size", lambda v: v >= 1, "an int >= 1"),
    ("train.learning_rate", lambda v: v > 0, "> 0"),
    ("train.weight_decay", lambda v: v >= 0, ">= 0"),
    ("train.checkpoint_every", lambda v: v >= 1, "an int >= 1"),
    ("model.dropout_rate", lambda v: 0 <= v < 1, "in [0, 1)"),
    (
        "model.encoder_sizes",
        lambda v: len(v) > 0 and min(v) >= 1,
        "a non-empty tuple of widths >= 1",
    ),
    ("model.adversary_hidden", lambda v: v >= 1, "an int >= 1"),
    ("loss.temperature", lambda v: v > 0, "> 0 (τ of L_cl, eq. 2)"),
    ("loss.epsilon", lambda v: v > 0, "> 0 (the Sinkhorn ε of L_D)"),
    ("loss.sinkhorn_iterations", lambda v: v >= 1, "an int >= 1"),
    ("loss.lambda_s", lambda v: v >= 0, ">= 0 (λ_S of eq. 2)"),
    ("loss.lambda_r", lambda v: v >= 0, ">= 0 (λ_R of eq. 2)"),
    ("loss.grl_scale", lambda v: v >= 0, ">= 0"),
    ("features.batch_seconds", lambda v: v > 0, "> 0"),
)


_CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _field(cfg: ml_collections.ConfigDict, dotted: str) -> Any:
    value = cfg
    for part in dotted.split("."):
        value = value[part]
    return value


def validate_config(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on values the runner cannot train.

    Checks what needs no data: the variants, emotions, folds, seeds, the
    numeric bounds of `_BOUNDS`, and that a batch can hold a pair of
    utterances whenever a variant has a group term (L_cl and L_D compare
    utterances of a batch: with one utterance per batch they vanish and
    Fair_spk would silently equal DNN). `check_fits` checks what needs
    the data (fold sizes, memory).
    """
    variants_lib.validate(cfg)
    classes = tuple(cfg.data.classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(
            f"config.data.classes is {classes}; it must list at least two "
            "distinct classes (S1 = utterances labelled with one of them)."
        )
    bad = [c for c in classes if not _CLASS_NAME.match(str(c))]
    if bad:
        raise ValueError(
            f"config.data.classes has {bad}: class names become file names "
            "and keys, so use letters, digits, '_' or '-' (rename them in "
            "the manifest's label columns)."
        )
    bad = [e for e in cfg.emotions if e not in classes]
    if bad:
        raise ValueError(
            f"config.emotions has {bad}, which config.data.classes "
            f"{classes} lacks; detectors are for the study's classes."
        )
    bad = [f for f in cfg.folds if not isinstance(f, int) or f < 0]
    if bad or len(set(cfg.folds)) != len(cfg.folds) or not cfg.folds:
        raise ValueError(
            f"config.folds is {tuple(cfg.folds)}; it must be distinct fold "
            "indices >= 0 (IEMOCAP: 0..4, one per session)."
        )
    layouts.detect_format("", cfg.data.format)
    for side in ("speaker_attribute", "rater_attribute"):
        value = cfg.data[side]
        if not value or not str(value).replace("_", "").isalnum():
            raise ValueError(
                f"config.data.{side} is {value!r}; it must name a column "
                f"suffix (e.g. 'gender' for {side.split('_')[0]}_gender)."
            )
    if cfg.data.num_folds < 2:
        raise ValueError(
            f"config.data.num_folds is {cfg.data.num_folds}; it must be >= 2."
        )
    if cfg.demo.rater_cue not in demo_corpus.RATER_CUES:
        raise ValueError(
            f"config.demo.rater_cue is {cfg.demo.rater_cue!r}; it must be one "
            f"of {', '.join(demo_corpus.RATER_CUES)}."
        )
    if cfg.loss.group_pooling not in losses.POOLINGS:
        raise ValueError(
            f"config.loss.group_pooling is {cfg.loss.group_pooling!r}; it "
            f"must be one of {', '.join(losses.POOLINGS)}."
        )
    if not cfg.seeds:
        raise ValueError("config.seeds is empty.")
    for name, ok, must in _BOUNDS:
        value = _field(cfg, name)
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            raise ValueError(f"config.{name} is {value!r}; it must be {must}.")
    grouped = [v for v in cfg.variants if variants_lib.get(v).pairwise]
    if grouped and cfg.train.batch_size < 2:
        raise ValueError(
            f"config.train.batch_size is {cfg.train.batch_size}, but "
            f"{', '.join(grouped)} compare(s) utterances within a batch "
            "(L_cl, L_D): with fewer than 2 per batch their fairness terms "
            "are zero and the model is a plain DNN. Use a batch of at least "
            "2 (the paper uses 32)."
        )


def load_features(
    cfg: ml_collections.ConfigDict,
    workdir: pathlib.Path,
    corpus: pathlib.Path,
    data: corpus_lib.Corpus,
) -> features_lib.FeatureSet:
    """The feature store, checked against what the config and corpus ask.

    The store's manifest must name the config's checkpoint and layer and
    the corpus's current audio (its fingerprint); otherwise the message
    names each differing field and the command that makes a matching
    store.

    Raises:
      FileNotFoundError: no store.
      features.FeatureStoreError: the store is damaged, not a store, or
        does not match (`StaleFeaturesError`).
    """
    path = features_path(cfg, workdir)
    fix = (
        f"python -m fairser_jax.extract --corpus={corpus} "
        f"--checkpoint={cfg.features.checkpoint} "
        f"--layer={cfg.features.layer} --out={path}"
        + (" --skip_bad_audio" if cfg.features.skip_bad_audio else "")
    )
    if not path.exists():
        raise FileNotFoundError(
            f"No feature store at {path}. Extract it first: {fix}"
        )
    present = [u for u in data.records if u.wav_path.exists()]
    expected = extraction.expected_manifest(
        cfg.features.checkpoint,
        features_lib.corpus_fingerprint(present),
        layer=cfg.features.layer,
    )
    try:
        return features_lib.load(path, expected=expected)
    except features_lib.StaleFeaturesError as e:
        raise features_lib.StaleFeaturesError(
            f"the feature store {path} does not match the config and corpus "
            f"({'; '.join(e.diffs)}). Make a matching store with: {fix}",
            e.diffs,
        ) from None


EARLIER_BEHAVIOUR: dict[tuple[str, str], Any] = {
    # Before `two_sided.distance` existed, D was the Sinkhorn divergence of
    # the two clouds as they are; the new default is Gromov-Wasserstein.
    ("two_sided", "distance"): "sinkhorn",
}
"""Fields added with a default that is NOT how the releases before them
behaved: a config.json without the field is read with this value."""


def _with_new_fields(old: dict, default: dict) -> dict:
    """`old` (a config.json) with the fields it lacks taken from `default`.

    A workdir of an earlier release lacks the config fields added since;
    they are read as their defaults, which is how that release behaved, so
    `--resume` with an unchanged config still matches — except the fields
    of `EARLIER_BEHAVIOUR`, read as what the earlier release did (so a
    workdir whose Proposed used the old D is not resumed with another).
    """
    old = dict(old)
    for (section, name), value in EARLIER_BEHAVIOUR.items():
        if isinstance(old.get(section), dict) and name not in old[section]:
            old[section] = {**old[section], name: value}
    return _fill(old, default)


def _fill(old: dict, default: dict) -> dict:
    out = dict(old)
    for key, value in default.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _fill(out[key], value)
    return out


def _check_resume_config(workdir: pathlib.Path, cfg_json: str) -> None:
    path = workdir_lib.Layout(workdir).config
    if not path.exists():
        return
    old = _with_new_fields(
        json.loads(path.read_text()),
        json.loads(config_lib.get_default_config().to_json_best_effort()),
    )
    new = json.loads(cfg_json)
    if old != new:
        diff = sorted(
            k for k in set(old) | set(new) if old.get(k) != new.get(k)
        )
        raise ConfigMismatchError(
            f"{path} was written by a different config (sections {diff} "
            "differ); resume with the same config, or use a new --workdir."
        )


"""Proposed's α of every batch (Fig. 3b)."""


def train(
    cfg: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    mesh: Mesh | None = None,
) -> dict:
    """Trains every configured variant and writes the workdir.

    The variants of `config.variants` are trained with their dependencies
    (`variants.training_order`: Proposed and fixed α need the trained
    Fair_spk and Fair_rat), each as one stacked set of runs. Expects the
    corpus and the feature store to exist (see `python -m
    fairser_jax.extract`, or `python -m fairser_jax.main`, which makes both)
    and checks the store against the config and the corpus first.

    Args:
      cfg: the config (see `fairser_jax.config`).
      workdir: output directory (see `fairser_jax.workdir` for its rules).
      resume: continue a killed run: finished variants are kept, the
        interrupted one restarts from its latest checkpoint.
      overwrite: discard the previous run held in `workdir`.
      progress: show tqdm bars.
      mesh: 1-D "runs" mesh (default: all local devices).

    Returns:
      The `results.json` content.

    Raises:
      workdir.WorkdirError: a previous run is in `workdir` and neither
        `resume` nor `overwrite` is set, or another process uses it.
    """
    validate_config(cfg)
    agree_on_config(cfg)
    with workdir_lib.claim(
        workdir, command="train", resume=resume, overwrite=overwrite
    ) as workdir:
        return _train_claimed(
            cfg, workdir, resume, progress and distributed.is_primary(), mesh
        )


def agree_on_config(cfg: ml_collections.ConfigDict) -> None:
    """With several processes: fails unless they all run the same config
    and the same software (a no-op on one process)."""
    import flax
    import optax

    digest = workdir_lib.config_digest(cfg.to_json_best_effort())
    distributed.on_all(
        "config",
        lambda: None,
        lambda _: {
            "config sha256": digest[:16],
            "fairser_jax": fairser_jax.__version__,
            "jax": jax.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
        },
    )


def _study_fingerprint(loaded) -> dict[str, str]:
    _, study = loaded
    table = json.dumps(study.table1(), sort_keys=True)
    return {"study sets": hashlib.sha256(table.encode()).hexdigest()[:16]}


def _features_fingerprint(feature_set) -> dict[str, str]:
    h = hashlib.sha256()
    h.update("\n".join(feature_set.ids).encode())
    h.update(np.ascontiguousarray(feature_set.features).tobytes())
    return {"feature store sha256": h.hexdigest()[:16]}


def _train_claimed(
    cfg: ml_collections.ConfigDict,
    workdir: pathlib.Path,
    resume: bool,
    progress: bool,
    mesh: Mesh | None,
) -> dict:
    cfg_json = cfg.to_json_best_effort(sort_keys=True, indent=2)
    if resume:
        _check_resume_config(workdir, cfg_json)
    corpus = corpus_dir(cfg, workdir)
    records, study = distributed.on_all(
        "read the corpus", lambda: load_study(cfg, corpus), _study_fingerprint
    )
    feature_set = distributed.on_all(
        "read the feature store",
        lambda: load_features(cfg, workdir, corpus, records),
        _features_fingerprint,
    )
    data, info = make_training_table(cfg, records, study, feature_set)
    check_fits(cfg, info, feature_set.feature_dim, mesh)

    def start() -> None:
        fileio.atomic_write_text(workdir_lib.Layout(workdir).config, cfg_json)
        for sub in workdir_lib.WORK_SUBDIRS:
            (workdir / sub).mkdir(exist_ok=True)
        by_id = {u.id: u for u in records.records}
        detector_lib.write_detector_files(
            workdir,
            feature_set.manifest,
            feature_set.features,
            [by_id[i].speaker for i in feature_set.ids],
            cfg_json,
        )

    distributed.on_primary("write config.json", start)
    order = variants_lib.training_order(cfg.variants)
    extra = [v for v in order if v not in cfg.variants]
    if extra:
        logging.info(
            "Also training %s: %s need(s) them.",
            ", ".join(extra),
            ", ".join(v for v in cfg.variants if v not in extra),
        )
    trained: dict[str, tuple[list[runs_lib.RunSpec], dict]] = {}
    for variant in order:
        trained[variant] = _train_one(
            variant, cfg, workdir, data, info, trained, resume, progress, mesh
        )
    digest = workdir_lib.config_digest(cfg_json)
    results = distributed.on_primary(
        "write results.json",
        lambda: assemble(workdir, order, study, digest),
    )
    if results is None:  # another process: read what process 0 wrote
        results = json.loads(
            workdir_lib.Layout(workdir).results.read_text("utf-8")
        )
    return results


def _train_one(
    variant: str,
    cfg: ml_collections.ConfigDict,
    workdir: pathlib.Path,
    data: dataset_lib.Dataset,
    info: dataset_lib.DatasetInfo,
    trained: dict[str, tuple[list[runs_lib.RunSpec], dict]],
    resume: bool,
    progress: bool,
    mesh: Mesh | None,
) -> tuple[list[runs_lib.RunSpec], dict]:
    """Trains one variant (or keeps it, resuming) and writes its files.

    A variant is finished when both `predictions/<v>.csv` and
    `params/<v>.npz` exist (each written atomically, parameters first).

    Returns:
      (runs, final parameters [R, ...]) for the variants that depend on it.
    """
    spec = variants_lib.get(variant)
    layout = workdir_lib.Layout(workdir)
    done = layout.predictions_file(variant)
    params_file = layout.params_file(variant)
    if resume and done.exists() and params_file.exists():
        logging.info("%s: already finished, kept.", variant)
        return outputs.load_params(params_file)
    runs = variant_runs(cfg, variant)
    init_params = None
    if spec.init_from is not None:
        init_params = outputs.params_for(runs, *trained[spec.init_from])
    refs = {
        name: outputs.params_for(runs, *trained[name])
        for name in spec.references
    }
    out = runner.train_variant(
        variant,
        runs,
        data,
        info.fold,
        cfg,
        init_params=init_params,
        refs=refs,
        checkpoint_dir=layout.checkpoint_dir(variant),
        resume=resume,
        mesh=mesh,
        progress=progress,
    )

    def write() -> None:
        training = layout.training_file(variant)
        with fileio.atomic_write(training, "wb") as f:
            np.savez(
                f,
                run=np.array([r.name for r in runs]),
                loss_history=out.loss_history,
            )
        if out.trace:
            outputs.write_alpha_trace(layout.alpha_trace, runs, out.trace)
        oof = outputs.out_of_fold(out, np.asarray(data.label), info)
        for result in oof:
            outputs.write_embeddings(workdir, result, info)
        outputs.save_params(params_file, runs, out.params)
        outputs.write_predictions(done, oof, info)
        # Finished: params/<v>.npz holds what resume, the two-sided
        # variants and prediction need; the orbax state (params +
        # optimiser moments) only served an interrupted run.
        shutil.rmtree(layout.checkpoint_dir(variant), ignore_errors=True)

    distributed.on_primary(f"write {variant}'s outputs", write)
    return runs, out.params


def _demo_corpus_matches(
    corpus: pathlib.Path, cfg: ml_collections.ConfigDict
) -> bool:
    """Whether `corpus` is a complete demo corpus of `cfg.demo`'s size,
    seed and rater cue (a marker without `rater_cue`, as a default corpus
    and those of earlier versions have, is `"none"`)."""
    try:
        summary = json.loads((corpus / "demo_corpus.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        summary.get("num_utterances") == cfg.demo.num_utterances
        and summary.get("seed") == cfg.demo.seed
        and summary.get("rater_cue", "none") == cfg.demo.rater_cue
    )


def prepare(
    cfg: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    progress: bool = True,
) -> pathlib.Path:
    """Makes sure the corpus and its feature store exist.

    With `cfg.data.corpus` empty, the demo corpus is generated into
    `<workdir>/corpus` (once; one of an earlier version gets its
    `speakers.csv`). Features are extracted into
    `features_path(cfg, workdir)`, or reused when that file's manifest
    matches the corpus and checkpoint.

    Returns:
      The corpus root.
    """
    workdir = pathlib.Path(workdir)
    corpus = corpus_dir(cfg, workdir)
    if not cfg.data.corpus:
        if not _demo_corpus_matches(corpus, cfg):
            logging.info("Generating the demo corpus in %s", corpus)
            demo_corpus.generate(
                corpus,
                num_utterances=cfg.demo.num_utterances,
                seed=cfg.demo.seed,
                overwrite=corpus.exists(),
                rater_cue=cfg.demo.rater_cue,
            )
        elif not (corpus / demo_corpus.SPEAKERS_FILE).exists():
            # A demo corpus of an earlier version: add the speaker list
            # `fairser_jax.predict --speaker_of` reads (nothing else does).
            demo_corpus.write_speakers_csv(corpus)
    elif not corpus.is_dir():
        raise FileNotFoundError(
            f"config.data.corpus={corpus} is not a directory; point it at "
            "an IEMOCAP root (the folder holding Session1..Session5) or a "
            "manifest folder (holding utterances.csv)."
        )
    extraction.extract_corpus(
        corpus,
        cfg.features.checkpoint,
        features_path(cfg, workdir),
        layer=cfg.features.layer,
        batch_seconds=cfg.features.batch_seconds,
        skip_bad_audio=cfg.features.skip_bad_audio,
        allow_pickle=cfg.features.allow_pickle,
        progress=progress,
        format=cfg.data.format,
    )
    return corpus


def run(
    cfg: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """The whole pipeline: corpus → features → train → report.md + figures.

    Args:
      cfg: the config.
      workdir: output directory (see `fairser_jax.workdir` for its rules).
      resume: continue the run in `workdir`.
      overwrite: discard the previous run in `workdir` first.
      progress: show progress bars.

    Returns:
      The `results.json` content.
    """
    validate_config(cfg)
    agree_on_config(cfg)
    progress = progress and distributed.is_primary()
    with workdir_lib.claim(
        workdir, command="main", resume=resume, overwrite=overwrite
    ) as workdir:
        distributed.on_primary(
            "make the corpus and its feature store",
            lambda: prepare(cfg, workdir, progress=progress),
        )
        results = train(cfg, workdir, resume=resume, progress=progress)
        distributed.on_primary(
            "write the report", lambda: report.write_report(workdir)
        )
    return results

"""Corpus → study sets → features → all variants → workdir files → report.

The whole pipeline, above the stages it orchestrates (`data`, `wav2vec2`,
`train`, `report`). `train(cfg, workdir)` is what `python -m
fairser_jax.train` runs and the training half of `python -m
fairser_jax.main`; `run` is all of `main`; a notebook can call either.

Workdir layout::

    config.json           the resolved config of the run
    results.json          study sets, per-result metrics, α histograms
    predictions.csv       one row per (result, utterance), every variant
    alpha_trace.npz       α of every batch of every Proposed run (Fig. 3b)
    predictions/<v>.csv   the same, per variant (written when <v> finishes)
    params/<v>.npz        final parameters of <v>'s runs
    training/<v>.npz      run names and per-epoch training loss
    embeddings/*.npz      out-of-fold test embeddings (Fig. 2)
    checkpoints/<v>/      orbax checkpoints of the stacked runs
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

import ml_collections
import numpy as np
from jax.sharding import Mesh

from fairser_jax import constants, report
from fairser_jax import results as results_lib
from fairser_jax.data import demo_corpus, iemocap, study_sets
from fairser_jax.data import features as features_lib
from fairser_jax.train import dataset as dataset_lib
from fairser_jax.train import outputs, runner
from fairser_jax.train import runs as runs_lib
from fairser_jax.train import variants as variants_lib
from fairser_jax.wav2vec2 import extraction


class ConfigMismatchError(ValueError):
    """`--resume` with a config that differs from the workdir's."""


def corpus_dir(cfg: ml_collections.ConfigDict, workdir: pathlib.Path):
    """The corpus root: `cfg.data.corpus`, else `<workdir>/corpus`."""
    return pathlib.Path(cfg.data.corpus or workdir / "corpus")


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
    return pathlib.Path(cfg.features.path or workdir / "features.npz")


def load_study(cfg: ml_collections.ConfigDict, corpus: pathlib.Path):
    """Reads the corpus and builds S1/S2 (paper §2.1.1, Table 1)."""
    utterances = iemocap.read_corpus(corpus)
    path = rater_gender_path(cfg, corpus)
    rater_gender = {} if path is None else study_sets.load_rater_gender(path)
    study = study_sets.build(
        utterances,
        rater_gender,
        require_both_genders=cfg.data.require_both_genders,
    )
    return utterances, study


def make_training_table(
    cfg: ml_collections.ConfigDict, utterances, study, feature_set
):
    """The S1 training table with speaker-wise z-normalised features.

    The z-normalisation statistics of a speaker use all of that speaker's
    extracted utterances (paper §2.2.1), not only S1's.
    """
    by_id = {u.id: u for u in utterances}
    ids = np.asarray(feature_set.ids)
    feats = np.asarray(feature_set.features, np.float32)
    if cfg.features.znorm:
        feats = features_lib.speaker_znorm(
            feats, [by_id[i].speaker for i in ids]
        )
    s1 = sorted(study.s1_ids)
    z = features_lib.align(
        features_lib.FeatureSet(
            ids=feature_set.ids, features=feats, manifest=feature_set.manifest
        ),
        s1,
    )
    return dataset_lib.make_dataset(
        ids=s1,
        features=z,
        labels=[by_id[i].label for i in s1],
        speaker_gender=[by_id[i].speaker_gender for i in s1],
        sessions=[by_id[i].session for i in s1],
        s2_rater_gender=study.s2_rater_gender,
    )


def validate_config(cfg: ml_collections.ConfigDict) -> None:
    """Fails early, naming the field, on values the runner cannot train."""
    variants_lib.validate(cfg)
    bad = [e for e in cfg.emotions if e not in constants.EMOTIONS]
    if bad:
        raise ValueError(
            f"config.emotions has {bad}; choose from {constants.EMOTIONS}."
        )
    bad = [f for f in cfg.folds if f not in range(5)]
    if bad:
        raise ValueError(f"config.folds has {bad}; folds are 0..4.")
    if not cfg.seeds:
        raise ValueError("config.seeds is empty.")
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise ValueError("config.train.epochs and batch_size must be >= 1.")


def _check_resume_config(workdir: pathlib.Path, cfg_json: str) -> None:
    path = workdir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = json.loads(cfg_json)
    if old != new:
        diff = sorted(
            k for k in set(old) | set(new) if old.get(k) != new.get(k)
        )
        raise ConfigMismatchError(
            f"{path} was written by a different config (sections {diff} "
            "differ); resume with the same config, or use a new --workdir."
        )


WORK_SUBDIRS: tuple[str, ...] = (
    "checkpoints",
    "predictions",
    "params",
    "training",
    "embeddings",
)
"""What `train` writes per variant (removed on a fresh, non-resumed run)."""

ALPHA_TRACE = "alpha_trace.npz"
"""Proposed's α of every batch (also removed on a fresh run)."""


def train(
    cfg: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    resume: bool = False,
    progress: bool = True,
    mesh: Mesh | None = None,
) -> dict:
    """Trains every configured variant and writes the workdir.

    The variants of `config.variants` are trained with their dependencies
    (`variants.training_order`: Proposed and fixed α need the trained
    Fair_spk and Fair_rat), each as one stacked set of runs. Expects the
    corpus and the feature store to exist (see `python -m
    fairser_jax.extract`, or `python -m fairser_jax.main`, which makes both).

    Args:
      cfg: the config (see `fairser_jax.config`).
      workdir: output directory.
      resume: continue a killed run: finished variants are kept, the
        interrupted one restarts from its latest checkpoint.
      progress: show tqdm bars.
      mesh: 1-D "runs" mesh (default: all local devices).

    Returns:
      The `results.json` content.
    """
    validate_config(cfg)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_json = cfg.to_json_best_effort(sort_keys=True, indent=2)
    if resume:
        _check_resume_config(workdir, cfg_json)
    else:
        for sub in WORK_SUBDIRS:
            shutil.rmtree(workdir / sub, ignore_errors=True)
        (workdir / ALPHA_TRACE).unlink(missing_ok=True)
    (workdir / "config.json").write_text(cfg_json)

    corpus = corpus_dir(cfg, workdir)
    utterances, study = load_study(cfg, corpus)
    feature_path = features_path(cfg, workdir)
    if not feature_path.exists():
        raise FileNotFoundError(
            f"No feature store at {feature_path}. Extract it first: python "
            f"-m fairser_jax.extract --corpus={corpus} --checkpoint="
            f"{cfg.features.checkpoint} --out={feature_path}"
        )
    feature_set = features_lib.load(feature_path)
    data, info = make_training_table(cfg, utterances, study, feature_set)

    for sub in WORK_SUBDIRS:
        (workdir / sub).mkdir(exist_ok=True)
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
    return assemble(workdir, order, study)


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
    done = workdir / "predictions" / f"{variant}.csv"
    params_file = outputs.params_path(workdir, variant)
    if resume and done.exists() and params_file.exists():
        logging.info("%s: already finished, kept.", variant)
        return outputs.load_params(params_file)
    runs = runs_lib.make_runs(
        variant, spec.emotions(cfg), cfg.folds, cfg.seeds, spec.alphas(cfg)
    )
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
        checkpoint_dir=workdir / "checkpoints" / variant,
        resume=resume,
        mesh=mesh,
        progress=progress,
    )
    np.savez(
        workdir / "training" / f"{variant}.npz",
        run=np.array([r.name for r in runs]),
        loss_history=out.loss_history,
    )
    if "alpha" in out.trace:
        outputs.write_alpha_trace(
            workdir / ALPHA_TRACE, runs, out.trace["alpha"]
        )
    oof = outputs.out_of_fold(out, np.asarray(data.label), info)
    for result in oof:
        outputs.write_embeddings(workdir, result, info)
    outputs.save_params(params_file, runs, out.params)
    outputs.write_predictions(done, oof, info)
    return runs, out.params


def assemble(workdir: pathlib.Path, variants: tuple[str, ...], study) -> dict:
    """Joins the per-variant predictions into predictions.csv + results.json.

    Every metric in results.json is computed from predictions.csv by
    `results.runs_from_predictions`, so the two cannot disagree; the α
    histograms of Fig. 3b come from `alpha_trace.npz`.
    """
    combined = workdir / "predictions.csv"
    tmp = combined.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        for i, variant in enumerate(variants):
            part = workdir / "predictions" / f"{variant}.csv"
            with part.open(encoding="utf-8", newline="") as lines:
                header = next(lines)
                if i == 0:
                    out.write(header)
                shutil.copyfileobj(lines, out)
    tmp.replace(combined)
    alpha_trace = {}
    trace_path = workdir / ALPHA_TRACE
    if "proposed" in variants and trace_path.exists():
        alpha_trace = outputs.summarize_alpha_trace(trace_path)
    results = {
        "study_sets": study.table1(),
        "runs": results_lib.runs_from_predictions(combined),
        "alpha_trace": alpha_trace,
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def prepare(
    cfg: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    progress: bool = True,
) -> pathlib.Path:
    """Makes sure the corpus and its feature store exist.

    With `cfg.data.corpus` empty, the demo corpus is generated into
    `<workdir>/corpus` (once). Features are extracted into
    `features_path(cfg, workdir)`, or reused when that file's manifest
    matches the corpus and checkpoint.

    Returns:
      The corpus root.
    """
    workdir = pathlib.Path(workdir)
    corpus = corpus_dir(cfg, workdir)
    if not cfg.data.corpus:
        if not (corpus / "demo_corpus.json").exists():
            logging.info("Generating the demo corpus in %s", corpus)
            demo_corpus.generate(
                corpus,
                num_utterances=cfg.demo.num_utterances,
                seed=cfg.demo.seed,
                overwrite=corpus.exists(),
            )
    elif not corpus.is_dir():
        raise FileNotFoundError(
            f"config.data.corpus={corpus} is not a directory; point it at "
            "an IEMOCAP root (the folder holding Session1..Session5)."
        )
    extraction.extract_corpus(
        corpus,
        cfg.features.checkpoint,
        features_path(cfg, workdir),
        layer=cfg.features.layer,
        batch_seconds=cfg.features.batch_seconds,
        allow_pickle=cfg.features.allow_pickle,
        progress=progress,
    )
    return corpus


def run(
    cfg: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """The whole pipeline: corpus → features → train → report.md + figures.

    Returns:
      The `results.json` content.
    """
    validate_config(cfg)
    prepare(cfg, workdir, progress=progress)
    results = train(cfg, workdir, resume=resume, progress=progress)
    report.write_report(workdir)
    return results

"""Corpus → study sets → features → all variants → workdir files → report.

The whole pipeline, above the stages it orchestrates (`data`, `wav2vec2`,
`train`, `report`). `train(cfg, workdir)` is what `python -m
fairser_jax.train` runs and the training half of `python -m
fairser_jax.main`; `run` is all of `main`; a notebook can call either.

What each step writes into the workdir: `fairser_jax.workdir.Layout`.
The checks a config gets before any work: `validate_config`.

With several processes (`fairser_jax.distributed`), every process reads
the corpus and the feature store and trains its shards of every stack;
process 0 alone makes the corpus and the store and writes every file
above, the others waiting for it where they need its files.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

import ml_collections
import numpy as np
from jax.sharding import Mesh

from fairser_jax import config as config_lib
from fairser_jax import detector as detector_lib
from fairser_jax import distributed, fileio, report
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


ConfigMismatchError = config_lib.ConfigMismatchError


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


def resolved_json(cfg: ml_collections.ConfigDict) -> str:
    """The config as `config.json` holds it (sorted keys, indented)."""
    return cfg.to_json_best_effort(sort_keys=True, indent=2)


def validate_config(cfg: ml_collections.ConfigDict) -> None:
    """Every check a config gets before any work: `config.validate` (what
    needs neither data nor JAX), then the trainer's registries
    (`train.variants.validate`: the α function, D, the objectives)."""
    config_lib.validate(cfg)
    variants_lib.validate(cfg)


def load_features(
    cfg: ml_collections.ConfigDict,
    workdir: pathlib.Path,
    corpus: pathlib.Path,
    data: corpus_lib.Corpus,
) -> features_lib.FeatureSet:
    """`train.dataset.load_features` of the store `features_path` names."""
    return dataset_lib.load_features(
        cfg, features_path(cfg, workdir), corpus, data
    )


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
      mesh: 1-D "runs" mesh (default: `runner.runs_mesh()`, every device
        of every process).

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
    and the same software (`distributed.agree_on_config`)."""
    distributed.agree_on_config(config_lib.flatten(cfg))


def _train_claimed(
    cfg: ml_collections.ConfigDict,
    workdir: pathlib.Path,
    resume: bool,
    progress: bool,
    mesh: Mesh | None,
) -> dict:
    cfg_json = resolved_json(cfg)
    if resume:
        config_lib.check_resume(workdir_lib.Layout(workdir).config, cfg_json)
    corpus = corpus_dir(cfg, workdir)
    records, study = distributed.on_all(
        "read the corpus",
        lambda: load_study(cfg, corpus),
        lambda loaded: distributed.study_fingerprint(loaded[1].table1()),
    )
    feature_set = distributed.on_all(
        "read the feature store",
        lambda: load_features(cfg, workdir, corpus, records),
        lambda fs: distributed.features_fingerprint(fs.ids, fs.features),
    )
    data, info = make_training_table(cfg, records, study, feature_set)
    check_fits(cfg, info, feature_set.feature_dim, mesh)
    inputs = dataset_lib.training_inputs(data, info)
    if resume:
        _check_resume_inputs(workdir_lib.Layout(workdir), inputs)

    def start() -> None:
        fileio.atomic_write_text(workdir_lib.Layout(workdir).config, cfg_json)
        fileio.atomic_write_text(
            workdir_lib.Layout(workdir).inputs,
            json.dumps(inputs, sort_keys=True) + "\n",
        )
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


def _check_resume_inputs(layout: workdir_lib.Layout, inputs: dict) -> None:
    """Refuses a resume whose labels, folds, groups or features differ from
    those of the run it continues (its finished variants were trained and
    scored on them)."""
    finished = sorted(p.stem for p in layout.predictions_dir.glob("*.csv"))
    if not layout.inputs.exists():
        if finished:
            logging.warning(
                "--resume: %s has no %s (written by an earlier version): "
                "the finished variants (%s) cannot be checked against "
                "today's labels, folds, groups and features.",
                layout.root,
                layout.INPUTS,
                ", ".join(finished),
            )
        return
    old = json.loads(layout.inputs.read_text(encoding="utf-8"))
    changes = dataset_lib.inputs_changes(old, inputs)
    if changes:
        raise dataset_lib.InputsChangedError(
            f"--resume: the run in {layout.root} was trained on other inputs "
            f"than today's corpus and features give ({'; '.join(changes)}); "
            + (
                f"its finished variants ({', '.join(finished)}) would be "
                "mixed with new ones. "
                if finished
                else ""
            )
            + "Restore the inputs it was trained on, or start over with "
            "--overwrite (or a new --workdir)."
        )


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
        if resume:
            # Before the corpus or the store is touched: a resume with
            # another config must leave the workdir's inputs as they were.
            config_lib.check_resume(
                workdir_lib.Layout(workdir).config, resolved_json(cfg)
            )
        distributed.on_primary(
            "make the corpus and its feature store",
            lambda: prepare(cfg, workdir, progress=progress),
        )
        results = train(cfg, workdir, resume=resume, progress=progress)
        distributed.on_primary(
            "write the report",
            lambda: report.write_report(workdir, figures=cfg.report.figures),
        )
    return results

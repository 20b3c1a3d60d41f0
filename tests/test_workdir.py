"""Nothing lost, nothing mixed: the workdir rules, the lock, the feature-store
check, up-front config validation and one-line errors (docs/DESIGN.md,
"Workdir rules").

Every test trains at most one DNN run of two epochs on the test corpus
(`configs/test.py`'s 120 utterances, random-tiny features), in process.
"""

import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from conftest import load_config

from fairser_jax import pipeline, report
from fairser_jax import workdir as workdir_lib
from fairser_jax.data import features as features_lib
from fairser_jax.report import recompute
from fairser_jax.train import runner

REPO = pathlib.Path(__file__).resolve().parents[1]


def _test_config():
    return load_config("test")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The test corpus and its feature store, made once (read-only here)."""
    root = tmp_path_factory.mktemp("inputs")
    pipeline.prepare(_test_config(), root, progress=False)
    return root


def _config(inputs, **train):
    cfg = _test_config()
    cfg.data.corpus = str(inputs / "corpus")
    cfg.features.path = str(inputs / "features.npz")
    cfg.variants = ("dnn",)
    cfg.emotions = ("anger",)
    cfg.seeds = (0,)
    cfg.folds = (0,)
    cfg.train.epochs = 2
    cfg.train.checkpoint_every = 1
    for key, value in train.items():
        cfg.train[key] = value
    return cfg


def _snapshot(workdir: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for p in sorted(workdir.rglob("*"))
        if p.is_file() and p.name != workdir_lib.LOCK_FILE
    }


@pytest.fixture(scope="module")
def finished(inputs, tmp_path_factory):
    """A workdir holding one finished run (kept unchanged by the tests)."""
    workdir = tmp_path_factory.mktemp("finished")
    pipeline.train(_config(inputs), workdir, progress=False)
    return workdir


# --- 1. A rerun never destroys the previous run ----------------------------


def test_rerun_without_resume_is_refused_and_keeps_the_run(
    inputs, finished, tmp_path
):
    workdir = tmp_path / "w"
    shutil.copytree(finished, workdir)
    before = _snapshot(workdir)
    with pytest.raises(workdir_lib.WorkdirError, match="--resume.*--overwrite"):
        pipeline.train(_config(inputs, epochs=3), workdir, progress=False)
    assert _snapshot(workdir) == before


def test_overwrite_that_dies_leaves_no_result_of_the_old_config(
    inputs, finished, tmp_path, monkeypatch
):
    """--overwrite discards the old run before training: if the new run then
    dies, no results.json/report.md of the OLD config sit beside the new
    config.json."""
    workdir = tmp_path / "w"
    shutil.copytree(finished, workdir)
    report.write_report(workdir, figures=False)  # recorded: a run's file

    def die(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(runner, "train_variant", die)
    new = _config(inputs, epochs=3)
    with pytest.raises(RuntimeError, match="killed"):
        pipeline.train(new, workdir, overwrite=True, progress=False)
    for name in (
        "results.json",
        "predictions.csv",
        "report.md",
        "params/dnn.npz",
        "predictions/dnn.csv",
    ):
        assert not (workdir / name).exists(), name
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["train"]["epochs"] == 3


def test_overwrite_refuses_files_it_did_not_write_and_removes_nothing(
    inputs, finished, tmp_path
):
    """A workdir holding the user's own files among a run's folders (a
    thesis figure, a table folder, notes beside the parameters) or a run's
    file the user edited: `--overwrite` used to remove the folders whole.
    Now it names each such file and removes nothing; without them it
    removes exactly what the runs wrote, and the user's other files stay."""
    workdir = tmp_path / "w"
    shutil.copytree(finished, workdir)
    report.write_report(workdir, figures=False)
    ledger = json.loads((workdir / workdir_lib.Layout.WRITTEN).read_text())
    assert {"params/dnn.npz", "report.md"} <= set(ledger["files"])
    theirs = {
        "figures/thesis.png": b"x",
        "tables/mine/t.tex": b"y",
        "params/notes.txt": b"z",
        "training/old_run.npz": b"w",
    }
    for rel, data in theirs.items():
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_bytes(data)
    (workdir / "drafts.md").write_text("not a run output")
    with (workdir / "report.md").open("a") as f:
        f.write("my edit\n")
    before = _snapshot(workdir)
    with pytest.raises(workdir_lib.WorkdirError) as info:
        pipeline.train(
            _config(inputs, epochs=3), workdir, overwrite=True, progress=False
        )
    message = str(info.value)
    for rel in [*theirs, "report.md"]:
        assert rel in message, rel
    assert "Nothing was removed" in message
    assert _snapshot(workdir) == before

    for rel in theirs:
        (workdir / rel).unlink()
    (workdir / "tables" / "mine").rmdir()
    (workdir / "report.md").unlink()
    # A temporary file of a write killed midway is a run's too.
    (workdir / ".results.json.abcd_123.tmp").write_text("{")
    (workdir / "predictions" / ".dnn.csv.zzzzzzzz.tmp").write_text("")
    pipeline.train(
        _config(inputs, epochs=3), workdir, overwrite=True, progress=False
    )
    assert (workdir / "drafts.md").read_text() == "not a run output"
    assert not list(workdir.rglob("*.tmp"))
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["train"]["epochs"] == 3
    assert not (workdir / "report.md").exists()  # the old run's, removed


def test_overwrite_of_a_workdir_without_a_record_removes_nothing(
    inputs, finished, tmp_path
):
    """A workdir of an earlier version has no record of what it wrote:
    `--overwrite` cannot tell its files from the user's and refuses."""
    workdir = tmp_path / "w"
    shutil.copytree(finished, workdir)
    (workdir / workdir_lib.Layout.WRITTEN).unlink()
    before = _snapshot(workdir)
    with pytest.raises(workdir_lib.WorkdirError, match="earlier version"):
        pipeline.train(_config(inputs), workdir, overwrite=True, progress=False)
    assert _snapshot(workdir) == before


def test_resume_refuses_inputs_that_changed_under_finished_variants(
    inputs, tmp_path
):
    """Relabelling utterances, then `--resume`: the finished DNN used to be
    kept (scored on the old labels) beside models trained on the new ones.
    The workdir records what its models were trained on (inputs.json);
    a resume on other labels is refused, naming the utterances."""
    own = tmp_path / "inputs"
    shutil.copytree(inputs / "corpus", own / "corpus")
    shutil.copy(inputs / "features.npz", own / "features.npz")
    shutil.copy(inputs / "features.npz.json", own / "features.npz.json")
    cfg = _config(own)
    workdir = tmp_path / "w"
    pipeline.train(cfg, workdir, progress=False)
    recorded = json.loads((workdir / "inputs.json").read_text())
    assert set(recorded["columns"]) >= {"label", "fold", "speaker_group"}
    # An unchanged resume keeps the finished variant.
    before = _snapshot(workdir)
    pipeline.train(cfg, workdir, resume=True, progress=False)
    assert (
        _snapshot(workdir)["predictions/dnn.csv"]
        == before["predictions/dnn.csv"]
    )
    relabelled = 0
    for path in sorted((own / "corpus").glob("Session*/dialog/*/*.txt")):
        text = path.read_text()
        new = text.replace("\tSadness;", "\tAnger;")
        relabelled += text != new
        path.write_text(new)
    assert relabelled
    before = _snapshot(workdir)
    with pytest.raises(ValueError, match="trained on other inputs") as info:
        pipeline.train(cfg, workdir, resume=True, progress=False)
    message = str(info.value)
    assert "utterance(s) changed (Ses" in message and "(dnn)" in message
    assert "--overwrite" in message
    assert _snapshot(workdir) == before


def test_input_changes_are_named_per_kind():
    from fairser_jax.train import dataset as dataset_lib

    old = {
        "columns": ["label", "fold", "speaker_group", "rater_group"],
        "features_sha256": "a",
        "utterances": {
            "u1": ["sadness", 0, "F", "M"],
            "u2": ["anger", 1, "M", ""],
            "u3": ["anger", 1, "M", ""],
        },
    }
    new = json.loads(json.dumps(old))
    assert dataset_lib.inputs_changes(old, new) == []
    new["features_sha256"] = "b"
    assert dataset_lib.inputs_changes(old, new) == [
        "the training features changed (the audio, the feature store or its "
        "normalisation)"
    ]
    new["utterances"]["u1"][0] = "anger"
    new["utterances"]["u2"][1] = 0
    del new["utterances"]["u3"]
    new["utterances"]["u4"] = ["anger", 0, "F", ""]
    assert dataset_lib.inputs_changes(old, new) == [
        "1 utterance(s) left S1 (u3)",
        "1 utterance(s) joined S1 (u4)",
        "the label of 1 utterance(s) changed (u1: 'sadness' -> 'anger')",
        "the fold of 1 utterance(s) changed (u2: 1 -> 0)",
    ]


def test_results_are_stamped_with_their_config(finished):
    results = json.loads((finished / "results.json").read_text())
    config = (finished / "config.json").read_text()
    assert results["config_sha256"] == workdir_lib.config_digest(config)


def test_the_report_refuses_results_of_another_config(finished, tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(finished, workdir)
    config = json.loads((workdir / "config.json").read_text())
    config["train"]["epochs"] = 9
    (workdir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="another config"):
        recompute.load_results(workdir)


def test_resume_and_overwrite_exclude_each_other(inputs, finished):
    with pytest.raises(workdir_lib.WorkdirError, match="exclude"):
        pipeline.train(_config(inputs), finished, resume=True, overwrite=True)


def test_inputs_alone_are_not_a_previous_run(inputs, tmp_path):
    """The one-command-per-stage recipe: extract into W, then train into W."""
    workdir = tmp_path / "w"
    workdir.mkdir()
    shutil.copy(inputs / "features.npz", workdir / "features.npz")
    cfg = _config(inputs)
    cfg.features.path = ""
    results = pipeline.train(cfg, workdir, progress=False)
    assert len(results["runs"]) == 1


# --- 2. One process per workdir ---------------------------------------------

HOLD_LOCK = """
import sys, time
from fairser_jax import workdir
with workdir.lock(sys.argv[1], "holder-test"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_process_is_refused_naming_the_holder(inputs, tmp_path):
    workdir = tmp_path / "w"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(workdir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(workdir_lib.WorkdirInUseError) as error:
            pipeline.train(_config(inputs), workdir, progress=False)
        message = str(error.value)
        assert f"pid {holder.pid}" in message
        assert "holder-test" in message
        assert not (workdir / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # The kernel released the dead holder's lock: the workdir is usable.
    with workdir_lib.lock(workdir, "after"):
        pass


HOLD_READ_LOCK = """
import sys, time
from fairser_jax import workdir
with workdir.read_lock(sys.argv[1], "reader-test"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_readers_and_writers_exclude_each_other(inputs, finished, tmp_path):
    """`predict` while `main` trains used to read whatever was there, the
    variant depending on timing. Readers share the lock; a writer excludes
    them, and each is told who holds it."""
    workdir = tmp_path / "w"
    shutil.copytree(finished, workdir)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(workdir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "fairser_jax.predict",
                f"--workdir={workdir}",
                f"--audio={inputs / 'corpus'}",
                f"--out={tmp_path / 'p.csv'}",
            ],
            cwd=REPO,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert "is being written by" in last and f"pid {writer.pid}" in last
        assert not (tmp_path / "p.csv").exists()
    finally:
        writer.kill()
        writer.wait()
    with workdir_lib.lock(workdir, "a writer that ends cleanly"):
        pass
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_LOCK, str(workdir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "locked"
        with workdir_lib.read_lock(workdir, "a second reader") as held:
            assert held
        with pytest.raises(workdir_lib.WorkdirInUseError, match="reading it"):
            with workdir_lib.lock(workdir, "writer"):
                pass
    finally:
        reader.kill()
        reader.wait()
    with workdir_lib.lock(workdir, "after"):
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, caplog):
    (tmp_path / workdir_lib.LOCK_FILE).write_text(
        json.dumps({"pid": 999999, "host": "h", "command": "c", "started": "t"})
    )
    with caplog.at_level(logging.INFO):
        with workdir_lib.lock(tmp_path, "me") as took:
            assert took
    assert "pid 999999" in caplog.text


def test_a_workdir_that_is_a_file_is_one_clear_error(tmp_path):
    path = tmp_path / "afile"
    path.write_text("mine")
    with pytest.raises(workdir_lib.WorkdirError, match="is a file, not a"):
        with workdir_lib.lock(path, "me"):
            pass
    assert path.read_text() == "mine"


def test_a_hand_edited_results_json_is_one_line(tmp_path):
    """A list or an int where a number or a run belongs used to be a
    TypeError traceback in the report."""
    good = {
        "study_sets": {"S1": {"n": 1, "per_class": {"anger": 1}}},
        "runs": [{"variant": "dnn", "emotion": "anger", "seed": 0, "f1": 0.5}],
    }
    (tmp_path / "results.json").write_text(json.dumps(good))
    recompute.load_results(tmp_path)
    for edit, words in (
        (lambda r: r["runs"].append(5), "runs[1] is 5, not a run"),
        (lambda r: r["runs"][0].update(f1=[1, 2]), "runs[0].f1 is [1, 2]"),
        (lambda r: r["runs"][0].update(dsp_spk=True), "runs[0].dsp_spk is"),
        (lambda r: r.update(study_sets=3), "study_sets must be an object"),
    ):
        bad = json.loads(json.dumps(good))
        edit(bad)
        (tmp_path / "results.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=re.escape(words)):
            recompute.load_results(tmp_path)


def test_an_unwritable_workdir_is_one_clear_error(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(workdir_lib.WorkdirError, match="cannot write"):
        with workdir_lib.lock(tmp_path / "w", "me"):
            pass


# --- 3. The feature store must match the config and the corpus ------------


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("layer", 1, "layer"),
        ("checkpoint", "random-base", "checkpoint"),
    ],
)
def test_a_store_made_otherwise_is_refused(
    inputs, tmp_path, field, value, named
):
    cfg = _config(inputs)
    cfg.features[field] = value
    with pytest.raises(features_lib.StaleFeaturesError) as error:
        pipeline.train(cfg, tmp_path / "w", progress=False)
    message = str(error.value)
    assert named in message
    assert f"--{field}={value}" in message  # the command that fixes it
    assert not (tmp_path / "w" / "config.json").exists()


def test_a_store_of_changed_audio_is_refused(inputs, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(inputs / "corpus", corpus)
    wav = next(corpus.glob("Session1/sentences/wav/*/*.wav"))
    audio, rate = soundfile.read(wav, dtype="float32")
    soundfile.write(wav, np.flip(audio), rate)
    cfg = _config(inputs)
    cfg.data.corpus = str(corpus)
    with pytest.raises(
        features_lib.StaleFeaturesError, match="corpus_fingerprint"
    ):
        pipeline.train(cfg, tmp_path / "w", progress=False)


def test_skip_bad_audio_is_a_config_field_main_honours(inputs, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(inputs / "corpus", corpus)
    wav = next(corpus.glob("Session1/sentences/wav/*/*.wav"))
    soundfile.write(wav, np.zeros((0,), np.float32), 16000)
    cfg = _config(inputs)
    cfg.data.corpus = str(corpus)
    cfg.features.path = str(tmp_path / "features.npz")
    with pytest.raises(ValueError, match="skip_bad_audio=true"):
        pipeline.prepare(cfg, tmp_path / "w", progress=False)
    cfg.features.skip_bad_audio = True
    pipeline.prepare(cfg, tmp_path / "w", progress=False)
    store = features_lib.load(cfg.features.path)
    assert [s["id"] for s in store.manifest["skipped"]] == [wav.stem]


# --- 4. Configs that cannot train are refused before any work -------------


@pytest.mark.parametrize(
    ("section", "field", "value", "match"),
    [
        ("train", "batch_size", 1, "batch_size is 1"),
        ("loss", "epsilon", 0.0, "epsilon"),
        ("loss", "temperature", -1.0, "temperature"),
        ("model", "dropout_rate", 1.0, "dropout_rate"),
        ("train", "learning_rate", 0.0, "learning_rate"),
    ],
)
def test_unusable_values_fail_before_any_work(
    inputs, tmp_path, section, field, value, match
):
    cfg = _config(inputs)
    cfg.variants = ("dnn", "fair_spk")
    cfg[section][field] = value
    with pytest.raises(ValueError, match=match):
        pipeline.train(cfg, tmp_path / "w", progress=False)
    assert not (tmp_path / "w").exists()


def test_batch_one_is_fine_for_dnn_alone(inputs, tmp_path):
    cfg = _config(inputs, batch_size=1, epochs=1)
    results = pipeline.train(cfg, tmp_path / "w", progress=False)
    assert len(results["runs"]) == 1


def test_a_batch_larger_than_the_training_set_is_refused(inputs, tmp_path):
    cfg = _config(inputs, batch_size=100000)
    with pytest.raises(ValueError, match="training utterances"):
        pipeline.train(cfg, tmp_path / "w", progress=False)
    assert not (tmp_path / "w" / "config.json").exists()


def test_batches_that_cannot_fit_in_memory_are_refused(
    inputs, tmp_path, monkeypatch
):
    """The bound is B² × 3 float32 per run: with 48 KiB 'available', a
    batch of 64 (3 × 64² × 4 B = 48 KiB) fits for DNN, not for Fair_spk."""
    monkeypatch.setattr(
        runner, "_available_bytes", lambda device: (48 * 1024 - 1, "test")
    )
    cfg = _config(inputs, batch_size=64)
    cfg.variants = ("dnn", "fair_spk")
    with pytest.raises(ValueError, match="cannot fit") as error:
        pipeline.train(cfg, tmp_path / "w", progress=False)
    assert "fair_spk" in str(error.value)
    assert not (tmp_path / "w" / "params").exists()  # DNN never trained
    assert pipeline.batch_memory_lower_bound(cfg, "fair_spk", 1) == (
        3 * 64 * 64 * 4
    )


# --- Resume: missing or damaged checkpoints --------------------------------


def _killed_during_dnn(inputs, tmp_path, monkeypatch) -> pathlib.Path:
    """A workdir whose run died after DNN's last checkpoint, before its
    predictions were written (so the checkpoint was not yet pruned)."""
    workdir = tmp_path / "w"

    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline.outputs, "write_predictions", killed)
        with pytest.raises(RuntimeError, match="killed"):
            pipeline.train(_config(inputs), workdir, progress=False)
    assert any((workdir / "checkpoints" / "dnn").iterdir())
    return workdir


def test_resume_restores_and_then_prunes_the_checkpoint(
    inputs, finished, tmp_path, monkeypatch, caplog
):
    workdir = _killed_during_dnn(inputs, tmp_path, monkeypatch)
    with caplog.at_level(logging.INFO):
        pipeline.train(_config(inputs), workdir, resume=True, progress=False)
    assert "dnn: resumed from epoch 2 of 2" in caplog.text
    assert not (workdir / "checkpoints" / "dnn").exists()
    assert (workdir / "results.json").read_text() == (
        finished / "results.json"
    ).read_text()


def test_resume_without_checkpoints_says_it_starts_over(
    inputs, tmp_path, monkeypatch, caplog
):
    workdir = _killed_during_dnn(inputs, tmp_path, monkeypatch)
    shutil.rmtree(workdir / "checkpoints" / "dnn")
    with caplog.at_level(logging.WARNING):
        pipeline.train(_config(inputs), workdir, resume=True, progress=False)
    assert "found no checkpoint" in caplog.text
    assert "epoch 0" in caplog.text


def test_a_damaged_checkpoint_is_one_clear_error(inputs, tmp_path, monkeypatch):
    workdir = _killed_during_dnn(inputs, tmp_path, monkeypatch)
    for file in (workdir / "checkpoints" / "dnn").rglob("*"):
        if file.is_file() and file.stat().st_size > 64:
            file.write_bytes(file.read_bytes()[:16])
    with pytest.raises(runner.CheckpointError) as error:
        pipeline.train(_config(inputs), workdir, resume=True, progress=False)
    message = str(error.value)
    assert "damaged" in message and "--overwrite" in message
    assert "\n" not in message


# --- The command line ------------------------------------------------------


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fairser_jax.train", *args],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu", **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_second_run_compiles_nothing_it_compiled_before(inputs, tmp_path):
    """With the persistent compilation cache, a second `train` on the same
    machine writes no new cache entry: every program was loaded."""
    cache = tmp_path / "cache"
    args = [
        "--config=configs/test.py",
        "--config.variants=('dnn','fair_spk')",
        "--config.emotions=('anger',)",
        "--config.seeds=(0,)",
        "--config.folds=(0,)",
        "--config.train.epochs=2",
        f"--config.data.corpus={inputs / 'corpus'}",
        f"--config.features.path={inputs / 'features.npz'}",
    ]
    first = _cli(
        *args, f"--workdir={tmp_path / 'a'}", FAIRSER_JAX_CACHE=str(cache)
    )
    assert first.returncode == 0, first.stderr[-2000:]
    entries = sorted(p.name for p in cache.iterdir())
    assert entries
    second = _cli(
        *args, f"--workdir={tmp_path / 'b'}", FAIRSER_JAX_CACHE=str(cache)
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert sorted(p.name for p in cache.iterdir()) == entries
    results = [
        json.loads((tmp_path / w / "results.json").read_text())["runs"]
        for w in "ab"
    ]
    assert results[0] == results[1]


def test_a_mistyped_config_field_is_one_line_with_a_hint(tmp_path):
    proc = _cli(
        "--config=configs/test.py",
        f"--workdir={tmp_path}",
        "--config.train.epoch=3",
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert 'did you mean "epochs"' in line.lower()
    assert "--config_help" in line


def test_config_help_lists_every_field():
    proc = _cli("--config=configs/test.py", "--config_help")
    assert proc.returncode == 0, proc.stderr
    assert "--config.train.batch_size=32" in proc.stdout
    assert "--config.features.skip_bad_audio=False" in proc.stdout
    assert "--config.two_sided.alpha_fn='saturating'" in proc.stdout

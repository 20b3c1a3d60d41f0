"""`python -m fairser_jax.predict` and `Detector` on a trained demo workdir."""

import csv
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import soundfile
from conftest import run_module

from fairser_jax import detector as detector_lib
from fairser_jax import models
from fairser_jax.data import features as features_lib
from fairser_jax.data import layouts
from fairser_jax.train import outputs
from fairser_jax.wav2vec2 import audio

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]


_run = run_module


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A demo workdir with Fair_spk only (no two-sided variant)."""
    out = tmp_path_factory.mktemp("predict") / "w"
    _run(
        "fairser_jax.main",
        "--config=configs/test.py",
        f"--workdir={out}",
        "--config.variants=('fair_spk',)",
        "--config.train.epochs=2",
        "--config.train.checkpoint_every=1",
        "--config.report.tsne_samples=60",
        "--config.report.figures=False",  # predict reads the models only
    )
    return out


@pytest.fixture(scope="module")
def detector(workdir):
    return detector_lib.Detector.load(workdir)


def _reference(workdir):
    """Every run's probability on the training features, by plain Flax."""
    config = json.loads((workdir / "config.json").read_text())
    store = features_lib.load(workdir / "features.npz")
    records = {r.id: r for r in layouts.read(workdir / "corpus").records}
    x = features_lib.speaker_znorm(
        store.features, [records[i].speaker for i in store.ids]
    )
    runs, params = outputs.load_params(workdir / "params" / "fair_spk.npz")
    model = models.model_from_config(ml_collections.ConfigDict(config["model"]))
    prob = {}
    for r, run in enumerate(runs):
        logits = np.asarray(
            model.apply({"params": _slice(params, r)}, x, train=False).logits,
            np.float64,
        )
        prob.setdefault(run.emotion, []).append(1 / (1 + np.exp(-logits)))
    return store.ids, records, {e: np.stack(v) for e, v in prob.items()}


def _slice(tree, r):
    if isinstance(tree, dict):
        return {k: _slice(v, r) for k, v in tree.items()}
    return np.asarray(tree)[r]


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_figures_off_writes_the_report_without_them(workdir):
    """`--config.report.figures=False` (the fixture's run): report.md and
    the tables are written, no figure is drawn, and the report says how to
    draw them."""
    assert not (workdir / "figures").exists()
    assert sorted((workdir / "tables").glob("*.csv"))
    md = (workdir / "report.md").read_text()
    assert "## Table 2" in md and "![" not in md
    assert "Not drawn (`config.report.figures` is False)" in md
    assert "python -m fairser_jax.report --workdir=" in md


def test_workdir_keeps_what_predicting_needs(workdir):
    """After training, checkpoints are pruned; params, the feature manifest
    and the normalisation statistics stay. The statistics are the average
    training speaker's (a plain loop over the store's speakers)."""
    assert not any((workdir / "checkpoints").rglob("*"))
    assert (workdir / "params" / "fair_spk.npz").is_file()
    info = json.loads((workdir / detector_lib.DETECTOR_FILE).read_text())
    store = features_lib.load(workdir / "features.npz")
    assert (
        info["feature_manifest"]["checkpoint"] == store.manifest["checkpoint"]
    )
    assert info["feature_manifest"]["layer"] == store.manifest["layer"]
    records = {r.id: r for r in layouts.read(workdir / "corpus").records}
    speakers = sorted({records[i].speaker for i in store.ids})
    means, variances = [], []
    for s in speakers:
        rows = [k for k, i in enumerate(store.ids) if records[i].speaker == s]
        x = store.features[rows].astype(np.float64)
        means.append(x.mean(axis=0))
        variances.append(x.var(axis=0))
    with np.load(workdir / detector_lib.NORMALIZATION_FILE) as f:
        np.testing.assert_allclose(f["mean"], np.mean(means, 0), rtol=1e-5)
        np.testing.assert_allclose(
            f["std"], np.sqrt(np.mean(variances, 0)), rtol=1e-5
        )


def test_predicting_the_corpus_equals_the_trained_models(workdir, tmp_path):
    """The demo's own wavs through `predict` (speakers given, so each is
    normalised with its own statistics, as in training) give the mean and
    SD of the trained runs' probabilities on the stored features."""
    ids, records, prob = _reference(workdir)
    speaker_of = tmp_path / "speakers.csv"
    with speaker_of.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "speaker"])
        for i in ids:
            writer.writerow([records[i].wav_path, records[i].speaker])
    out = tmp_path / "preds.csv"
    proc = _run(
        "fairser_jax.predict",
        f"--workdir={workdir}",
        f"--audio={workdir / 'corpus'}",
        f"--speaker_of={speaker_of}",
        "--min_speaker_utterances=2",
        f"--out={out}",
    )
    assert "variant: Fair_spk (fair_spk; the workdir has no two-sided" in (
        proc.stdout
    )
    assert "recordings/s" in proc.stdout and "x real time" in proc.stdout
    rows = _read(out)
    assert {r["variant"] for r in rows} == {"fair_spk"}
    assert len(rows) == len(ids) * 2
    by_path = {str(records[i].wav_path): k for k, i in enumerate(ids)}
    for row in rows:
        p = prob[row["emotion"]][:, by_path[row["path"]]]
        assert float(row["probability"]) == pytest.approx(p.mean(), abs=2e-5)
        assert float(row["sd"]) == pytest.approx(p.std(ddof=1), abs=2e-5)
        if abs(p.mean() - 0.5) > 1e-4:
            assert row["decision"] == ("yes" if p.mean() >= 0.5 else "no")
    # The Python API on the same waveforms and speakers: the same numbers.
    detector = detector_lib.Detector.load(workdir)
    full = detector.predict(
        [soundfile.read(records[i].wav_path)[0] for i in ids],
        16_000,
        speakers=[records[i].speaker for i in ids],
        min_speaker_utterances=2,
    )
    for e, emotion in enumerate(full.emotions):
        np.testing.assert_allclose(
            full.probability[:, e], prob[emotion].mean(0), atol=2e-5
        )


_ABSL_WARNING = re.compile(r"^[WEF]\d{4} ")


def _predict_piped(workdir, cwd, *args):
    """`predict` as a user who pipes it (``2>&1 | tee``) runs it: stdout
    block-buffered, stdout and stderr into one pipe, from `cwd`."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.predict",
            f"--workdir={workdir}",
            *args,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout.splitlines()


def test_demo_speaker_list_predicts_warning_free(workdir, tmp_path):
    """The README's command with the demo corpus's speakers.csv, on a
    moved copy of the corpus, from another folder: no warning, so every
    file was found in the list (relative paths resolve against the CSV's
    folder). This small corpus has a speaker with 9 utterances, hence
    --min_speaker_utterances (the demo's have 56 to 64). The lines come
    in the order written: the variant, progress, table, summary."""
    moved = tmp_path / "moved" / "corpus"
    shutil.copytree(workdir / "corpus", moved)
    out = tmp_path / "p.csv"
    lines = _predict_piped(
        workdir,
        tmp_path,
        f"--audio={moved}",
        f"--speaker_of={moved / 'speakers.csv'}",
        "--min_speaker_utterances=9",
        f"--out={out}",
    )
    assert not [x for x in lines if _ABSL_WARNING.match(x)], lines
    assert lines[0].startswith("variant: Fair_spk")
    table = lines.index(next(x for x in lines if x.startswith("recording ")))
    assert all(x.startswith("I") for x in lines[1:table]), lines
    assert lines[-1].startswith("120 of 120 recording(s) predicted")
    assert len(_read(out)) == 120 * 2


def test_warnings_come_out_before_the_table(workdir, tmp_path):
    """Without --speaker_of a folder is one speaker, which is said, in
    order: the first line printed stays first, the warning precedes the
    table although stdout is block-buffered."""
    lines = _predict_piped(
        workdir,
        tmp_path,
        f"--audio={workdir / 'corpus' / 'Session2'}",
        f"--out={tmp_path / 'p.csv'}",
    )
    warnings = [k for k, x in enumerate(lines) if _ABSL_WARNING.match(x)]
    assert "each of the 1 folder(s) counts as one speaker" in "".join(
        lines[k] for k in warnings
    )
    table = lines.index(next(x for x in lines if x.startswith("recording ")))
    assert lines[0].startswith("variant: Fair_spk")
    assert 0 < min(warnings) and max(warnings) < table


def _wav(path, x, rate=16_000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, x, rate, subtype="FLOAT")
    return path


def test_stereo_44k_equals_its_16k_mono_version(detector, workdir, tmp_path):
    """Resampling and channel averaging as in training: 44.1 kHz stereo
    waveforms (channels x ± d) predict as their 16 kHz mono versions
    (channel mean, resampled by training's resampler) written to wav files
    and read back as training reads its corpus."""
    records = layouts.read(workdir / "corpus").records[:6]
    rng = np.random.default_rng(0)
    stereo, files = [], []
    for k, r in enumerate(records):
        x, rate = soundfile.read(r.wav_path, dtype="float32")
        assert rate == 16_000
        up = audio.resample(x, 16_000, 44_100)
        d = 0.05 * rng.standard_normal(up.shape).astype(np.float32)
        pair = np.stack([up + d, up - d], axis=1)
        stereo.append(pair)
        mean = pair.mean(axis=1, dtype=np.float64).astype(np.float32)
        files.append(
            _wav(tmp_path / f"m{k}.wav", audio.resample(mean, 44_100, 16_000))
        )
    a = detector.predict(stereo, 44_100)
    b = detector.predict_features(detector.extract(files).features)
    np.testing.assert_allclose(a.probability, b.probability, atol=1e-6)
    np.testing.assert_allclose(a.sd, b.sd, atol=1e-6)
    # Arrays are checked as files are, naming the bad one.
    for bad, reason in ((np.zeros(0), "no samples"), (np.zeros(50), "short")):
        with pytest.raises(audio.AudioError, match=f"waveforms.1.*{reason}"):
            detector.predict([stereo[0], bad], 44_100)
    dim = detector.mean.shape[0]
    with pytest.raises(ValueError, match="2 speakers for 3 recordings"):
        detector.predict_features(np.zeros((3, dim)), ["a", "b"])
    with pytest.raises(ValueError, match=f"must be .N, {dim}."):
        detector.predict_features(np.zeros((3, dim + 1)))
    # A stereo 44.1 kHz file reads as the same waveform in memory.
    path = _wav(tmp_path / "s.wav", stereo[0], 44_100)
    c = detector.predict_features(detector.extract([path]).features)
    np.testing.assert_allclose(c.probability[0], a.probability[0], atol=1e-6)


def test_one_file_alone_equals_it_in_a_folder(detector, workdir, tmp_path):
    """Batch invariance: with the same (training) normalisation, a file's
    prediction does not depend on what it is extracted with."""
    records = layouts.read(workdir / "corpus").records[:6]
    folder = tmp_path / "many"
    folder.mkdir()
    for r in records:
        shutil.copy(r.wav_path, folder / r.wav_path.name)
    files = sorted(folder.glob("*.wav"))
    alone = detector.predict_features(detector.extract(files[2:3]).features)
    together = detector.predict_features(detector.extract(files).features)
    np.testing.assert_allclose(
        alone.probability[0], together.probability[2], atol=2e-6
    )
    np.testing.assert_allclose(alone.sd[0], together.sd[2], atol=2e-6)


def test_bad_audio_is_reported_per_file(workdir, tmp_path):
    folder = tmp_path / "mixed"
    good = layouts.read(workdir / "corpus").records[0].wav_path
    folder.mkdir()
    shutil.copy(good, folder / "good.wav")
    _wav(folder / "empty.wav", np.zeros(0, np.float32))
    _wav(folder / "short.wav", np.zeros(100, np.float32))
    (folder / "garbage.wav").write_text("not audio")
    out = tmp_path / "p.csv"
    proc = _run(
        "fairser_jax.predict",
        f"--workdir={workdir}",
        f"--audio={folder}",
        f"--out={out}",
    )
    for name in ("empty.wav", "short.wav", "garbage.wav"):
        assert f"not predicted: {folder / name}" in proc.stderr, name
    # One folder is one speaker, and one recording is too few for its own
    # statistics: both are said.
    assert "each of the 1 folder(s) counts as one speaker" in proc.stderr
    assert "fewer than 10 utterances" in proc.stderr
    assert {r["path"] for r in _read(out)} == {str(folder / "good.wav")}
    assert "1 of 4 recording(s) predicted, 3 not" in proc.stdout
    # An existing --out is never replaced silently.
    again = _run(
        "fairser_jax.predict",
        f"--workdir={workdir}",
        f"--audio={folder}",
        f"--out={out}",
        check=False,
    )
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .endswith("pass --overwrite to replace it, or another --out.")
    )


def test_workdir_problems_are_one_line(workdir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(detector_lib.DetectorError, match="no trained models"):
        detector_lib.Detector.load(empty)
    with pytest.raises(detector_lib.DetectorError, match="has no trained dnn"):
        detector_lib.Detector.load(workdir, "dnn")
    copy = tmp_path / "copy"
    shutil.copytree(workdir / "params", copy / "params")
    shutil.copy(workdir / "normalization.npz", copy / "normalization.npz")
    info = json.loads((workdir / "detector.json").read_text())
    info["config"]["features"]["checkpoint"] = str(tmp_path / "nowhere")
    (copy / "detector.json").write_text(json.dumps(info))
    proc = _run(
        "fairser_jax.predict",
        f"--workdir={copy}",
        f"--audio={workdir / 'corpus'}",
        f"--out={tmp_path / 'x.csv'}",
        check=False,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairser_jax.predict: error: the models in")
    assert str(tmp_path / "nowhere") in last
    (copy / "detector.json").write_text("{x")
    with pytest.raises(detector_lib.DetectorError) as info:
        detector_lib.Detector.load(copy)
    assert str(copy / "detector.json") in str(info.value)
    assert "damaged" in str(info.value) and "train --resume" in str(info.value)
    (copy / "detector.json").unlink()
    with pytest.raises(detector_lib.DetectorError, match="train --resume"):
        detector_lib.Detector.load(copy)
    shutil.copy(workdir / "detector.json", copy / "detector.json")
    params = copy / "params" / "fair_spk.npz"
    params.write_bytes(params.read_bytes()[:1000])  # truncated
    with pytest.raises(detector_lib.DetectorError) as info:
        detector_lib.Detector.load(copy, "fair_spk")
    assert str(params) in str(info.value) and "BadZipFile" in str(info.value)
    assert "predictions/fair_spk.csv" in str(info.value)


def test_out_never_replaces_an_input_nor_lands_in_a_folder(
    tmp_path, monkeypatch
):
    """`--out=<an input wav> --overwrite` used to replace the recording
    with the CSV; `--out=<a folder>` failed with IsADirectoryError after
    all the work. Both are refused before any work, naming the problem."""
    from fairser_jax import predict_inputs as predict

    wav = tmp_path / "a.wav"
    soundfile.write(wav, np.zeros(16000, np.float32), 16000)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{wav}\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    other = tmp_path / "old.csv"
    other.write_text("x\n")
    inputs = [wav, listing]
    for out in (wav, listing, tmp_path / "." / "a.wav"):
        problem = predict.out_problem(out, inputs, overwrite=True)
        assert problem and "one of the inputs" in problem, out
    assert "is a folder" in predict.out_problem(folder, inputs, overwrite=True)
    assert "is a file, not a folder" in predict.out_problem(
        wav / "x.csv", inputs, overwrite=True
    )
    assert "--overwrite" in predict.out_problem(other, inputs, overwrite=False)
    assert predict.out_problem(other, inputs, overwrite=True) is None
    new = tmp_path / "new.csv"
    assert predict.out_problem(new, inputs, overwrite=False) is None
    # A read-only workdir with the default --out (<workdir>/predict/...):
    # refused up front instead of after the extraction (os.access stands
    # in for the mount: this suite may run as root, who writes anywhere).
    locked = tmp_path / "read_only"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode: p != locked and real_access(p, mode),
    )
    assert "cannot write in" in predict.out_problem(
        locked / "predict" / "x.csv", inputs, overwrite=False
    )

    before = wav.read_bytes()
    proc = _run(
        "fairser_jax.predict",
        f"--workdir={tmp_path / 'no_workdir'}",
        f"--audio={wav}",
        f"--out={wav}",
        "--overwrite",
        check=False,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "one of the inputs" in last
    assert wav.read_bytes() == before


def test_bad_lists_are_one_line_naming_the_file(tmp_path):
    """A --speaker_of row short of a cell (AttributeError before), a binary
    or unknown-suffix --audio read as a list (UnicodeDecodeError)."""
    from fairser_jax import predict_inputs as predict

    short = tmp_path / "spk.csv"
    short.write_text("path,speaker\nfoo.wav\n")
    with pytest.raises(ValueError, match=r"spk.csv:2: the row has fewer"):
        predict.read_speaker_of(short)
    long = tmp_path / "spk2.csv"
    long.write_text("path,speaker\na.wav,s1,extra\n")
    with pytest.raises(ValueError, match=r"spk2.csv:2: the row has more"):
        predict.read_speaker_of(long)
    blob = bytes(range(256)) * 4
    (tmp_path / "take.bin").write_bytes(blob)
    with pytest.raises(ValueError, match="not a sound file .* nor a list"):
        predict.audio_files(tmp_path / "take.bin")
    (tmp_path / "take.txt").write_bytes(blob)
    with pytest.raises(ValueError, match="must be UTF-8 text"):
        predict.audio_files(tmp_path / "take.txt")
    (tmp_path / "ok.txt").write_text("a.wav\n# comment\nsub/b.flac\n")
    assert predict.audio_files(tmp_path / "ok.txt") == [
        tmp_path / "a.wav",
        tmp_path / "sub" / "b.flac",
    ]

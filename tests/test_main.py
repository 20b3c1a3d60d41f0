"""`python -m fairser_jax.main` end to end on configs/test.py."""

import csv
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import launch_processes, wait_all
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from sklearn.metrics import f1_score

from fairser_jax.report import recompute

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
VARIANTS = ("dnn", "fair_spk", "fair_rat", "basic", "proposed", "fixed_alpha")


def _cli(module, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


_LOGS: dict[str, str] = {}


_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("main")
    tic = time.monotonic()
    proc = _cli(
        "fairser_jax.main",
        "--config=configs/test.py",
        f"--workdir={out}",
    )
    _SECONDS["main"] = time.monotonic() - tic
    _LOGS["main"] = proc.stderr
    _LOGS["main stdout"] = proc.stdout
    return out


_DONE = re.compile(
    r"Done in (?:(\d+)h)?(?:(\d+)m)?(\d+)s: (\d+) results; (.*) in (\S+)"
)


def _done_line(stdout: str) -> re.Match:
    """The last line of `main`'s stdout, parsed by `_DONE`."""
    last = stdout.strip().splitlines()[-1]
    match = _DONE.fullmatch(last)
    assert match, last
    return match


def _done_lines(log: str) -> list[re.Match]:
    """Every `_DONE` line of a log holding stdout and stderr."""
    lines = log.splitlines()
    return [m for m in map(_DONE.fullmatch, lines) if m]


def test_ends_with_wall_time_and_what_it_wrote(workdir):
    """The last line: the wall time of the command and, on one line, the
    files it wrote, each count read back from the workdir here."""
    match = _done_line(_LOGS["main stdout"])
    hours, minutes, seconds = (int(g or 0) for g in match.group(1, 2, 3))
    took = 3600 * hours + 60 * minutes + seconds
    assert 0 < took <= _SECONDS["main"] + 1
    results = json.loads((workdir / "results.json").read_text())
    assert int(match.group(4)) == len(results["runs"])
    assert match.group(6) == str(workdir)
    tables = {p.stem for p in (workdir / "tables").iterdir()}
    figures = {p.stem for p in (workdir / "figures").iterdir()}
    assert tables and figures
    assert match.group(5) == (
        f"report.md, {len(tables)} tables, {len(figures)} figures, "
        f"predictions.csv ({len(_rows(workdir))} rows)"
    )


def test_log_is_plain_lines_without_backend_chatter(workdir):
    """Not on a terminal, progress is log lines: no carriage returns, and no
    'Unable to initialize backend' notes about absent accelerators."""
    log = _LOGS["main"]
    assert "\r" not in log
    assert "Unable to initialize backend" not in log
    assert "dnn (20 runs): 4/4 epoch" in log


def test_outputs_exist(workdir):
    for name in (
        "config.json",
        "results.json",
        "predictions.csv",
        "report.md",
        "features.npz",
        "corpus/rater_gender.json",
    ):
        assert (workdir / name).is_file(), name
    for variant in VARIANTS:
        assert (workdir / "predictions" / f"{variant}.csv").is_file()
        assert (workdir / "params" / f"{variant}.npz").is_file()
    pngs = sorted(p.name for p in (workdir / "figures").glob("*.png"))
    assert any(p.startswith("fig2_tsne") for p in pngs), pngs
    assert "parity_bars.png" in pngs
    assert "fig3a_fixed_alpha_anger.png" in pngs
    assert {"fig3b_alpha_hist_anger.png", "fig3b_alpha_hist_sadness.png"} <= (
        set(pngs)
    )
    report = (workdir / "report.md").read_text()
    for section in ("Table 1", "Table 2", "Table 3", "Fixed α sweep"):
        assert f"## {section}" in report, section


def test_alpha_trace(workdir):
    """One α and one D per training batch of every Proposed run,
    summarised per emotion in results.json (what Fig. 3b draws)."""
    config = json.loads((workdir / "config.json").read_text())
    results = json.loads((workdir / "results.json").read_text())
    with np.load(workdir / "alpha_trace.npz") as f:
        trace = {k: f[k] for k in f.files}
    want = {
        f"proposed/{e}/seed{s}/fold{f}/{term}"
        for e in config["emotions"]
        for s in config["seeds"]
        for f in config["folds"]
        for term in ("alpha", "distance")
    }
    assert set(trace) == want
    # Every run takes the largest training fold's steps per epoch.
    folds = [
        r["fold"]
        for r in _rows(workdir)
        if (r["variant"], r["emotion"], r["seed"]) == ("dnn", "anger", "0")
    ]
    s1_n = results["study_sets"]["S1"]["n"]
    largest_train = max(s1_n - folds.count(str(f)) for f in config["folds"])
    steps = -(-largest_train // config["train"]["batch_size"])
    for key, values in trace.items():
        assert values.dtype == np.float32
        assert values.shape == (config["train"]["epochs"] * steps,)
        assert np.all(np.isfinite(values))
        if key.endswith("/alpha"):
            assert np.all((values >= 0) & (values <= 1))
    for emotion in config["emotions"]:
        summary = results["alpha_trace"][emotion]
        values = np.concatenate(
            [
                v
                for k, v in trace.items()
                if k.startswith(f"proposed/{emotion}/") and k.endswith("/alpha")
            ]
        )
        d = np.concatenate(
            [
                v
                for k, v in trace.items()
                if k.startswith(f"proposed/{emotion}/")
                and k.endswith("/distance")
            ]
        ).astype(np.float64)
        assert summary["distance"]["mean"] == pytest.approx(d.mean(), rel=1e-6)
        assert (workdir / "figures" / f"alpha_distance_{emotion}.png").is_file()
        counts, _ = np.histogram(values, np.linspace(0, 1, 21))
        assert summary["counts"] == counts.tolist()
        assert summary["num_batches"] == values.size
        assert summary["mean"] == pytest.approx(values.mean(), rel=1e-6)


def _rows(workdir):
    with open(workdir / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_results_recompute_with_sklearn_and_fairlearn(workdir):
    results = json.loads((workdir / "results.json").read_text())
    rows = _rows(workdir)
    # 6 variants × emotions × seeds, and the fixed-α sweep on anger.
    assert len(results["runs"]) == 6 * 2 * 2 + 2 * 1 * 2
    assert {r["alpha"] for r in results["runs"]} == {None, 0.25, 0.75}
    s1_n = results["study_sets"]["S1"]["n"]
    for run in results["runs"]:
        alpha = "" if run["alpha"] is None else repr(run["alpha"])
        mine = [
            r
            for r in rows
            if r["variant"] == run["variant"]
            and r["emotion"] == run["emotion"]
            and int(r["seed"]) == run["seed"]
            and r["alpha"] == alpha
        ]
        # Out-of-fold: every S1 utterance predicted exactly once.
        assert len(mine) == s1_n
        assert len({r["utterance_id"] for r in mine}) == s1_n
        assert {r["fold"] for r in mine} == {"0", "1", "2", "3", "4"}
        y_true = np.array([int(r["y_true"]) for r in mine])
        y_pred = np.array([int(r["y_pred"]) for r in mine])
        score = np.array([float(r["y_score"]) for r in mine])
        np.testing.assert_array_equal(y_pred, score >= 0.5)
        spk = np.array([r["speaker_gender"] for r in mine])
        rat = np.array([r["rater_gender"] for r in mine])
        s2 = rat != ""
        assert s2.sum() == results["study_sets"]["S2"]["n"]
        # Table 1's rows per group (the § marks of small groups).
        for name, groups in (("S1", spk), ("S2", rat[s2])):
            assert results["study_sets"][name]["per_group"] == {
                g: int(np.sum(groups == g))
                for g in results["study_sets"][name]["per_group"]
            }
            assert sum(results["study_sets"][name]["per_group"].values()) == (
                len(groups)
            )
        assert run["f1"] == pytest.approx(
            f1_score(y_true, y_pred, average="weighted"), abs=1e-12
        )
        assert run["dsp_spk"] == pytest.approx(
            demographic_parity_difference(
                y_true, y_pred, sensitive_features=spk
            ),
            abs=1e-12,
        )
        assert run["dsp_rat"] == pytest.approx(
            demographic_parity_difference(
                y_true[s2], y_pred[s2], sensitive_features=rat[s2]
            ),
            abs=1e-12,
        )
        for name, fn in (
            ("eod", equalized_odds_difference),
            ("eopp", equal_opportunity_difference),
        ):
            assert run[f"{name}_spk"] == pytest.approx(
                fn(y_true, y_pred, sensitive_features=spk), abs=1e-12
            )
            assert run[f"{name}_rat"] == pytest.approx(
                fn(y_true[s2], y_pred[s2], sensitive_features=rat[s2]),
                abs=1e-12,
            )


def test_report_recompute_cli_agrees(workdir):
    proc = _cli(
        "fairser_jax.report",
        f"--workdir={workdir}",
        "--recompute",
        "--nofigures",
    )
    assert "match" in proc.stdout


def test_train_cli_is_deterministic(workdir, tmp_path):
    """The same runs on the same inputs, trained again by `train` ⇒ the same
    results and predictions, to the last digit. The Proposed chain (Fair_spk,
    Fair_rat, Proposed: every kind of objective, anchor and reference) stands
    for the seven variants of the run above."""
    _cli(
        "fairser_jax.train",
        "--config=configs/test.py",
        "--config.variants=('proposed',)",
        "--config.report.figures=False",
        f"--workdir={tmp_path}",
        f"--config.data.corpus={workdir / 'corpus'}",
        f"--config.features.path={workdir / 'features.npz'}",
    )
    first = json.loads((workdir / "results.json").read_text())
    second = json.loads((tmp_path / "results.json").read_text())
    chain = {"fair_spk", "fair_rat", "proposed"}
    assert second["runs"] == [r for r in first["runs"] if r["variant"] in chain]
    assert second["study_sets"] == first["study_sets"]
    assert _rows(tmp_path) == [
        r for r in _rows(workdir) if r["variant"] in chain
    ]


def test_train_without_features_says_how_to_make_them(tmp_path, workdir):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.train",
            "--config=configs/test.py",
            f"--workdir={tmp_path}",
            f"--config.data.corpus={workdir / 'corpus'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "python -m fairser_jax.extract" in proc.stderr


def test_checkpoints_of_finished_variants_are_pruned(workdir):
    """Finished variants keep params/<v>.npz, not their orbax state."""
    assert [p for p in (workdir / "checkpoints").iterdir()] == []
    for variant in VARIANTS:
        assert (workdir / "params" / f"{variant}.npz").is_file()


def test_resume_finishes_an_interrupted_variant(workdir):
    """A run killed before fair_rat's predictions were written resumes to
    the same results; finished variants are kept as they were. (fair_rat's
    checkpoint was pruned when it finished, so the log says it starts
    over; restoring a checkpoint mid-variant is tested in test_train.py.)"""
    before = (workdir / "results.json").read_text()
    dnn_csv = (workdir / "predictions" / "dnn.csv").stat().st_mtime_ns
    (workdir / "predictions" / "fair_rat.csv").unlink()
    (workdir / "results.json").unlink()
    proc = _cli(
        "fairser_jax.train",
        "--config=configs/test.py",
        f"--workdir={workdir}",
        "--resume",
    )
    assert "fair_rat: --resume found no checkpoint" in proc.stderr
    assert "dnn: already finished" in proc.stderr
    assert (workdir / "results.json").read_text() == before
    assert (workdir / "predictions" / "dnn.csv").stat().st_mtime_ns == dnn_csv


def test_resume_refuses_another_config(workdir):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.train",
            "--config=configs/test.py",
            f"--workdir={workdir}",
            "--resume",
            "--config.train.epochs=7",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "different config" in proc.stderr


def test_recompute_checks_every_number_it_can_derive(workdir, tmp_path):
    """Fig. 3b's α summary and S2's rows per rater group, edited in
    results.json, used to pass `--recompute`."""
    for name in ("results.json", "predictions.csv", "config.json"):
        shutil.copy(workdir / name, tmp_path / name)
    shutil.copy(workdir / "alpha_trace.npz", tmp_path / "alpha_trace.npz")
    recompute.verify_workdir(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    emotion = sorted(results["alpha_trace"])[0]
    edits = [
        (("alpha_trace", emotion, "mean"), 0.123),
        (("alpha_trace", emotion, "counts", 3), 99),
        (("alpha_trace", emotion, "distance", "max"), 7.0),
        (("study_sets", "S2", "per_group", "F"), 1),
        (("study_sets", "S1", "per_group", "M"), 2),
    ]
    for path, value in edits:
        edited = json.loads(json.dumps(results))
        target = edited
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        (tmp_path / "results.json").write_text(json.dumps(edited))
        with pytest.raises(recompute.ResultsMismatchError) as info:
            recompute.verify_workdir(tmp_path)
        where = ".".join(str(p) for p in path if not isinstance(p, int))
        assert where.split(".")[-1] in str(info.value), (path, str(info.value))


def _tree_digest(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_resume_with_another_config_touches_no_input(workdir):
    """`main --resume` with another demo size and checkpoint is refused
    before the corpus or the feature store is rewritten (issue: the demo
    corpus went from 600 to 120 wavs, then came the refusal)."""
    before = {
        "corpus": _tree_digest(workdir / "corpus"),
        "features": hashlib.sha256(
            (workdir / "features.npz").read_bytes()
        ).hexdigest(),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.main",
            "--config=configs/test.py",
            f"--workdir={workdir}",
            "--resume",
            "--config.demo.num_utterances=40",
            "--config.features.checkpoint=random-base",
        ],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "different config" in proc.stderr
    assert "demo" in proc.stderr and "features" in proc.stderr
    assert "Generating" not in proc.stderr
    after = {
        "corpus": _tree_digest(workdir / "corpus"),
        "features": hashlib.sha256(
            (workdir / "features.npz").read_bytes()
        ).hexdigest(),
    }
    assert after == before


# ---------------------------------------------------------------------------
# Two processes (jax.distributed on 127.0.0.1, gloo CPU collectives, two
# fake devices each) against the one-process, one-device run above, killed
# mid-training and resumed. To keep the test short they train the Proposed
# chain (fair_spk, fair_rat, proposed) for seed 0 only, on the corpus and
# feature store of the run above; a run's result does not depend on which
# other runs are trained (runs.run_key), so those runs are compared with the
# same runs of the full one-process run.

_CHAIN = ("fair_spk", "fair_rat", "proposed")


def _launch(workdir, logs, reference, *extra):
    return launch_processes(
        "fairser_jax.main",
        [
            "--config=configs/test.py",
            "--config.variants=('proposed',)",
            "--config.seeds=(0,)",
            f"--config.data.corpus={reference / 'corpus'}",
            f"--config.features.path={reference / 'features.npz'}",
            f"--workdir={workdir}",
            # The figures do not depend on the process count; the run
            # above draws them.
            "--config.report.figures=False",
            *extra,
        ],
        logs,
    )


def test_sigterm_stops_one_process_saved_and_resume_continues(
    workdir, tmp_path
):
    """One process: SIGTERM during training saves at the end of the epoch
    (not only at the last checkpoint_every) and exits with 143; --resume
    continues from that epoch."""
    args = [
        sys.executable,
        "-m",
        "fairser_jax.train",
        "--config=configs/test.py",
        "--config.variants=('dnn',)",
        "--config.seeds=(0,)",
        "--config.folds=(0,)",
        "--config.train.epochs=1000",
        "--config.train.checkpoint_every=500",
        f"--config.data.corpus={workdir / 'corpus'}",
        f"--config.features.path={workdir / 'features.npz'}",
        f"--workdir={tmp_path / 'w'}",
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    log = tmp_path / "log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 600
        while "dnn (" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143, log.read_text()[-3000:]
    text = log.read_text()
    [epoch] = re.findall(r"stopped by SIGTERM after epoch (\d+) of 1000", text)
    assert (tmp_path / "w" / "checkpoints" / "dnn" / epoch).is_dir()
    resumed = subprocess.run(
        [*args, "--resume"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from epoch {epoch} of 1000" in resumed.stderr


def test_sigterm_stops_both_processes_saved_at_one_epoch(workdir, tmp_path):
    """SLURM preemption and `timeout` send SIGTERM. Two processes used to
    keep training (JAX's preemption notifier caught the signal; still
    running minutes later). Now both save at the same epoch boundary and
    exit with 143, saying how to continue."""
    multi = tmp_path / "w"
    procs = launch_processes(
        "fairser_jax.main",
        [
            "--config=configs/test.py",
            "--config.variants=('dnn',)",
            "--config.seeds=(0,)",
            "--config.train.epochs=5000",
            "--config.train.checkpoint_every=1000",
            f"--config.data.corpus={workdir / 'corpus'}",
            f"--config.features.path={workdir / 'features.npz'}",
            f"--workdir={multi}",
        ],
        tmp_path / "logs",
    )
    log0 = tmp_path / "logs" / "p0.log"
    deadline = time.monotonic() + 600
    while "dnn (" not in (log0.read_text() if log0.exists() else ""):
        if any(p.poll() is not None for p in procs):
            pytest.fail(f"a process ended early:\n{log0.read_text()[-3000:]}")
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    assert wait_all(procs, timeout=120) == [143, 143]
    epochs = set()
    for i in (0, 1):
        log = (tmp_path / "logs" / f"p{i}.log").read_text()
        found = re.findall(r"stopped by SIGTERM after epoch (\d+) of 5000", log)
        assert found and "continue with --resume" in log, log[-3000:]
        epochs.add(int(found[-1]))
    [epoch] = epochs  # the same on both
    assert epoch < 5000
    assert (multi / "checkpoints" / "dnn" / str(epoch)).is_dir()
    assert not (multi / "predictions" / "dnn.csv").exists()


def _assert_identical(rows, reference):
    """Every column of every row equal, y_score (a float32 probability)
    to the last digit: each device trains its chunks with the program one
    device would (fairser_jax/train/runner.py). In one partitioned program
    per variant they differed by up to 1.9e-6 after these 4 epochs, and by
    up to 0.22 after 300 (docs/DESIGN.md)."""
    assert len(rows) == len(reference) > 0
    assert rows == reference


def test_two_processes_killed_and_resumed_equal_one_process(workdir, tmp_path):
    """2 processes x 2 devices; process 1 killed mid-Proposed (after its
    epoch-2 checkpoint): process 0 names it in one line within half the
    heartbeat timeout and stops (it used to abort in C++ with a stack dump
    80-92 s later). Then --resume: fair_spk and fair_rat are kept, Proposed
    restores from the checkpoint, and results.json runs, predictions.csv
    and Proposed's α and D traces equal those of 1 process x 1 device, bit
    for bit. Only process 0 reports."""
    multi = tmp_path / "w"
    procs = _launch(
        multi, tmp_path / "logs", workdir, "--distributed_heartbeat=20"
    )
    checkpoint = multi / "checkpoints" / "proposed" / "2"
    deadline = time.monotonic() + 900
    while not checkpoint.exists():
        if any(p.poll() is not None for p in procs):
            log = (tmp_path / "logs" / "p0.log").read_text()
            pytest.fail(f"a process ended before the kill:\n{log[-3000:]}")
        assert time.monotonic() < deadline
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    codes = wait_all(procs, timeout=60)
    log = (tmp_path / "logs" / "p0.log").read_text()
    assert codes == [1, -signal.SIGKILL], log[-3000:]
    assert time.monotonic() - killed < 10 + 15  # half the heartbeat + beats
    assert log.rstrip().splitlines()[-1] == (
        "fairser_jax.main: error: process 1 of the run stopped answering "
        "10 s ago (killed, out of memory, or its machine is down); process 0 "
        "stops too. Start every process again with --resume: what was "
        "saved is kept."
    ), log[-3000:]
    assert "Traceback" not in log and "Fatal Python error" not in log
    assert not (multi / "predictions" / "proposed.csv").exists()
    assert (multi / "predictions" / "fair_rat.csv").is_file()

    procs = _launch(multi, tmp_path / "logs2", workdir, "--resume")
    codes = wait_all(procs, timeout=1200)
    logs = [(tmp_path / "logs2" / f"p{i}.log").read_text() for i in (0, 1)]
    assert codes == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert "process 0 of 2" in logs[0]
    assert "fair_spk: already finished, kept." in logs[0]
    # Killed within ~20 ms of the epoch-2 checkpoint; on a very slow
    # machine the epoch-4 one may have replaced it: still a mid-variant
    # restore (Proposed's predictions were not written).
    assert re.search(r"proposed: resumed from epoch [24] of 4", logs[0])
    [done] = _done_lines(logs[0])
    assert done.group(4, 6) == ("6", str(multi))
    assert _done_lines(logs[1]) == []
    assert (multi / "report.md").is_file()

    results = json.loads((multi / "results.json").read_text())
    reference = json.loads((workdir / "results.json").read_text())
    want = [
        r
        for r in reference["runs"]
        if r["variant"] in _CHAIN and r["seed"] == 0
    ]
    assert len(results["runs"]) == len(want) == 6
    assert results["runs"] == want
    assert results["study_sets"] == reference["study_sets"]
    chain = [
        r for r in _rows(workdir) if r["variant"] in _CHAIN and r["seed"] == "0"
    ]
    _assert_identical(_rows(multi), chain)
    # Proposed's α and D at every step, bit for bit (α carries D's
    # rounding into every step's loss weight).
    with (
        np.load(multi / "alpha_trace.npz") as got,
        np.load(workdir / "alpha_trace.npz") as want,
    ):
        assert got.files and set(got.files) <= set(want.files)
        for key in got.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)

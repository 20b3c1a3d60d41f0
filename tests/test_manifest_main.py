"""`main` on manifest corpora: binary gender unchanged, k-group attributes.

The demo corpus is exported as a manifest (`fairser_jax.data.manifest`);
reading it must give the IEMOCAP reading's predictions byte for byte, and
3-group speaker and rater attributes added to it run end to end through
`python -m fairser_jax.main`, every metric recomputed with fairlearn.
"""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from sklearn.metrics import f1_score

from fairser_jax.data import demo_corpus, layouts, manifest

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]

# A small, quick protocol for one detector (variants per test).
COMMON = (
    "--config=configs/test.py",
    "--config.seeds=(0,)",
    "--config.train.epochs=2",
    "--config.train.checkpoint_every=1",
    "--config.report.tsne_samples=60",
)

AGE = ("18-30", "31-50", "51+")


def _main(
    *args: str, emotions: str = "('anger',)"
) -> subprocess.CompletedProcess:
    """`main` on COMMON's protocol for the detectors `emotions` (a tuple
    flag given once: absl appends a repeated one)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fairser_jax.main",
            *COMMON,
            f"--config.emotions={emotions}",
            *args,
        ],
        cwd=REPO,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _add_column(path: pathlib.Path, key: str, name: str, value) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row[name] = value(row[key])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """(IEMOCAP-layout demo corpus, its manifest with 3-group columns)."""
    root = tmp_path_factory.mktemp("manifest_main")
    iemocap_dir = root / "iemocap"
    demo_corpus.generate(iemocap_dir, num_utterances=120, seed=0)
    folder = root / "manifest"
    manifest.write(layouts.read(iemocap_dir), folder)
    speakers = sorted({r.speaker for r in layouts.read(iemocap_dir).records})
    _add_column(
        folder / "utterances.csv",
        "speaker_id",
        "speaker_age_group",
        lambda s: AGE[speakers.index(s) % 3],
    )
    _add_column(
        folder / "raters.csv",
        "rater_id",
        "rater_age_group",
        lambda r: AGE[int(r[1:]) % 3],
    )
    return iemocap_dir, folder


def test_binary_gender_manifest_equals_iemocap_reading(corpora, tmp_path):
    """The same corpus read from either layout trains the same models: the
    study sets, folds, group codes and run keys are the same, so
    predictions.csv is equal byte for byte (both runs in one process
    layout, so float rounding is equal too)."""
    iemocap_dir, folder = corpora
    store = tmp_path / "features.npz"
    a, b = tmp_path / "a", tmp_path / "b"
    # Basic (L_SPK + L_RAT) holds every binary group term (L_cl, L_D-S,
    # the one-logit adversary, L_D-R) in one variant; the others add none.
    # The results are compared, not the figures (drawn by the other tests).
    variants = ("--config.variants=('basic',)", "--config.report.figures=False")
    _main(
        f"--workdir={a}",
        f"--config.data.corpus={iemocap_dir}",
        f"--config.features.path={store}",
        *variants,
    )
    log = _main(
        f"--workdir={b}",
        f"--config.data.corpus={folder}",
        f"--config.features.path={store}",
        *variants,
    ).stderr
    # The manifest names the same audio: the store is reused, not remade.
    assert f"reusing {store} (manifest matches)" in log, log[-2000:]
    assert (a / "predictions.csv").read_bytes() == (
        b / "predictions.csv"
    ).read_bytes()
    results_a = json.loads((a / "results.json").read_text())
    results_b = json.loads((b / "results.json").read_text())
    assert results_a["runs"] == results_b["runs"]
    assert results_a["study_sets"] == results_b["study_sets"]


def _relabel(folder: pathlib.Path, old: str, new: str) -> None:
    """Renames a class in the manifest's ``label`` columns."""
    for name in ("utterances.csv", "ratings.csv"):
        path = folder / name
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if "label" not in rows[0]:
            continue
        for row in rows:
            row["label"] = new if row["label"] == old else row["label"]
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


# A corpus with a class the paper does not have ("calm" for its neutral),
# whose one detector is the calm one: nothing of the paper's per-class
# numbers applies, and the report must still be whole.
CLASSES = ("calm", "happiness", "anger", "sadness", "frustration")


def test_three_groups_each_side_end_to_end(corpora, tmp_path):
    """3 speaker and 3 rater groups, a class of the corpus's own and one
    detector: every metric against fairlearn, and the full report (Tables
    1-3, the figures) with "—" where the paper has no number."""
    _, exported = corpora
    folder = tmp_path / "manifest"
    shutil.copytree(exported, folder)
    _relabel(folder, "neutral", "calm")
    work = tmp_path / "w"
    proc = _main(
        f"--workdir={work}",
        f"--config.data.corpus={folder}",
        "--config.data.speaker_attribute=age_group",
        "--config.data.rater_attribute=age_group",
        f"--config.data.classes={CLASSES!r}",
        # Both one-sided fair models (L_cl, L_D-S, the adversary, L_D-R)
        # and the two-sided Proposed model that reads them.
        "--config.variants=('fair_spk','fair_rat','proposed')",
        emotions="('calm',)",
    )
    results = json.loads((work / "results.json").read_text())
    with (work / "predictions.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        rows = list(reader)
    assert header[-2:] == ["speaker_age_group", "rater_age_group"]
    assert {r["speaker_age_group"] for r in rows} == set(AGE)
    assert {r["rater_age_group"] for r in rows} - {""} == set(AGE)
    assert set(results["study_sets"]["S2"]["per_group"]) == set(AGE)
    assert len(results["runs"]) == 3
    for run in results["runs"]:
        mine = [
            r
            for r in rows
            if (r["variant"], r["emotion"], r["seed"])
            == (run["variant"], run["emotion"], str(run["seed"]))
        ]
        assert len(mine) == results["study_sets"]["S1"]["n"]
        y_true = np.array([int(r["y_true"]) for r in mine])
        y_pred = np.array([int(r["y_pred"]) for r in mine])
        spk = np.array([r["speaker_age_group"] for r in mine])
        rat = np.array([r["rater_age_group"] for r in mine])
        s2 = rat != ""
        assert run["f1"] == pytest.approx(
            f1_score(y_true, y_pred, average="weighted"), abs=1e-12
        )
        for side, rows_of, groups in (
            ("spk", np.ones_like(s2), spk),
            ("rat", s2, rat),
        ):
            yt, yp, g = y_true[rows_of], y_pred[rows_of], groups[rows_of]
            assert run[f"dsp_{side}"] == pytest.approx(
                demographic_parity_difference(yt, yp, sensitive_features=g),
                abs=1e-12,
            )
            assert run[f"eod_{side}"] == pytest.approx(
                equalized_odds_difference(yt, yp, sensitive_features=g),
                abs=1e-12,
            )
            assert run[f"eopp_{side}"] == pytest.approx(
                equal_opportunity_difference(yt, yp, sensitive_features=g),
                abs=1e-12,
            )
    # The 3-way adversary was trained: its output layer has 3 logits.
    with np.load(work / "params" / "fair_rat.npz") as f:
        kernel = f["params/adversary_head/out/kernel"]
    assert kernel.shape[-1] == 3
    assert {r["emotion"] for r in results["runs"]} == {"calm"}
    assert results["study_sets"]["S1"]["per_class"]["calm"] > 0
    report = (work / "report.md").read_text()
    for section in ("Table 1", "Table 2", "Table 3"):
        assert f"## {section}" in report, section
    # The paper publishes no calm detector: its cells are "—".
    with (work / "tables" / "table2_dsp_spk.csv").open(newline="") as f:
        rows = {r["Model"]: r for r in csv.DictReader(f)}
    assert rows["Fair_spk (paper)"]["Calm mean"] == ""
    assert rows["Fair_spk"]["Calm mean"] != ""
    assert "| Fair_spk (paper) | — |" in report.replace("**", "")
    figures = {p.name for p in (work / "figures").glob("*.png")}
    for name in ("parity_bars.png", "pareto_calm.png", "loss_curves.png"):
        assert name in figures, (name, sorted(figures))
    assert any(n.startswith("fig3b_alpha_hist_calm") for n in figures)
    tsne = list((work / "figures").glob("fig2_tsne_*.png"))
    assert tsne, proc.stderr[-2000:]


def test_s2_rated_by_one_group_reports_undefined_gaps_and_finishes(
    corpora, tmp_path
):
    """One male rater among five female ones: S2's rater groups are all F.
    Every model used to train and then `main` died computing ΔSP_rat
    ("groups must contain at least two distinct values"), losing the work;
    now the rater-side gaps are None in results.json, "—" in the tables,
    and the run finishes with its report."""
    _, exported = corpora
    folder = tmp_path / "manifest"
    shutil.copytree(exported, folder)
    path = folder / "raters.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        row["rater_gender"] = "M" if i == 1 else "F"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    work = tmp_path / "w"
    proc = _main(
        f"--workdir={work}",
        f"--config.data.corpus={folder}",
        "--config.variants=('dnn','fair_rat')",
    )
    assert "ΔSP_rat, ΔEOd_rat, ΔEOpp_rat) are undefined" in proc.stderr
    results = json.loads((work / "results.json").read_text())
    assert results["study_sets"]["S2"]["n"] > 0
    assert len(results["runs"]) == 2
    for run in results["runs"]:
        assert run["dsp_rat"] is None and run["eod_rat"] is None
        assert run["dsp_spk"] is not None
    with (work / "tables" / "table2_dsp_rat.csv").open(newline="") as f:
        table = {r["Model"]: r for r in csv.DictReader(f)}
    assert table["DNN"]["Anger mean"] == ""
    assert (work / "report.md").is_file()

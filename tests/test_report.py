"""Tests of the report stage (tables, figures, recomputation, CLI).

A synthetic workdir mimics what `python -m fairser_jax.train` writes.
Its results.json is computed here independently with sklearn and
fairlearn; the report's numbers and the recomputation from
predictions.csv are checked against that reference.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate_difference,
)
from PIL import Image
from sklearn.metrics import f1_score

from fairser_jax import variants as variants_lib
from fairser_jax.constants import EMOTIONS
from fairser_jax.report import document, figures, recompute, tables

REPO = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = (
    "variant,emotion,seed,alpha,fold,utterance_id,y_true,y_score,y_pred,"
    "speaker_gender,rater_gender"
).split(",")
NUM_UTTERANCES = 150
ONE_SIDED = ("dnn", "fair_spk", "fair_rat")
EMOS = ("neutral", "anger")
SEEDS = (0, 1)
ALPHAS = (0.25, 0.5, 0.75)
# Per-variant shifts of the positive rate for M vs F speakers and for the
# M vs F rater group, so that the parities differ across variants.
SPK_BIAS = {"dnn": 1.0, "fair_spk": 0.1, "fair_rat": 1.2, "basic": 0.6}
RAT_BIAS = {"dnn": 1.0, "fair_spk": 1.1, "fair_rat": 0.1, "basic": 0.7}


def _utterances(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = NUM_UTTERANCES
    session = rng.integers(1, 6, n)
    spk = rng.choice(np.array(["M", "F"]), n)
    ids = np.array(
        [
            f"Ses{s:02d}F_impro01_{g}{i:03d}"
            for i, (s, g) in enumerate(zip(session, spk, strict=True))
        ]
    )
    label = rng.choice(np.array(EMOTIONS), n)
    in_s2 = rng.random(n) < 0.6
    rat = np.where(in_s2, rng.choice(np.array(["M", "F"]), n), "")
    return {
        "id": ids,
        "fold": session - 1,
        "spk": spk,
        "rat": rat,
        "label": label,
    }


def _reference_run(y_true, y_pred, spk, rat) -> dict[str, float]:
    """F1 / ΔSP / ΔEOd / ΔEOpp by sklearn and fairlearn, independent of
    fairser_jax."""
    s2 = rat != ""
    views = {}
    for name, fn in (
        ("eod", equalized_odds_difference),
        ("eopp", equal_opportunity_difference),
    ):
        views[f"{name}_spk"] = float(fn(y_true, y_pred, sensitive_features=spk))
        views[f"{name}_rat"] = float(
            fn(y_true[s2], y_pred[s2], sensitive_features=rat[s2])
        )
    return {
        **views,
        "f1": float(f1_score(y_true, y_pred, average="weighted")),
        "dsp_spk": float(
            demographic_parity_difference(
                y_true, y_pred, sensitive_features=spk
            )
        ),
        "dsp_rat": float(
            demographic_parity_difference(
                y_true[s2], y_pred[s2], sensitive_features=rat[s2]
            )
        ),
    }


def _run_list(two_sided: bool) -> list[tuple[str, str, int, float | None]]:
    runs = [(v, e, s, None) for v in ONE_SIDED for e in EMOS for s in SEEDS]
    if two_sided:
        runs += [
            (v, e, s, None)
            for v in ("basic", "proposed")
            for e in EMOS
            for s in SEEDS
        ]
        runs += [("fixed_alpha", "anger", s, a) for a in ALPHAS for s in SEEDS]
    return runs


NUM_EPOCHS = 6
NUM_FOLDS = 5


def _write_training(
    root: pathlib.Path, variants: list[str], rng: np.random.Generator
) -> None:
    """training/<variant>.npz as the pipeline writes it: `run` [R] and
    `loss_history` [R, epochs]. DNN's loss decays over two decades (a
    log axis), Fair_spk's goes negative (the logged −L_Adv)."""
    (root / "training").mkdir()
    for v in variants:
        r = len(EMOS) * len(SEEDS) * NUM_FOLDS
        decay = np.exp(-np.arange(NUM_EPOCHS) * (1.0 if v == "dnn" else 0.2))
        loss = (1.0 + rng.random((r, 1))) * decay + 0.05 * rng.random(
            (r, NUM_EPOCHS)
        )
        if v == "fair_spk":
            loss -= 1.5
        np.savez(
            root / "training" / f"{v}.npz",
            run=np.array([f"{v} run {i}" for i in range(r)]),
            loss_history=loss.astype(np.float32),
        )


def make_workdir(
    root: pathlib.Path,
    *,
    two_sided: bool = True,
    seed: int = 0,
    training: bool = True,
) -> dict:
    """Writes config.json, results.json, predictions.csv, embeddings/ and
    (when `training`) training/."""
    rng = np.random.default_rng(seed)
    u = _utterances(rng)
    n = NUM_UTTERANCES
    root.mkdir(parents=True, exist_ok=True)
    runs, rows = [], []
    for k, (variant, emotion, s, alpha) in enumerate(_run_list(two_sided)):
        y_true = (u["label"] == emotion).astype(int)
        spk_b = SPK_BIAS.get(variant, 0.3 + 0.1 * (k % 4))
        rat_b = RAT_BIAS.get(variant, 0.2 + 0.1 * (k % 5))
        logit = (
            rng.normal(0, 1, n)
            + 1.5 * y_true
            - 0.8
            + spk_b * (u["spk"] == "M")
            - rat_b * (u["rat"] == "F")
        )
        score = 1 / (1 + np.exp(-logit))
        y_pred = (score >= 0.5).astype(int)
        ref = _reference_run(y_true, y_pred, u["spk"], u["rat"])
        runs.append(
            {
                "variant": variant,
                "emotion": emotion,
                "seed": s,
                "alpha": alpha,
                **ref,
            }
        )
        order = rng.permutation(n)  # rows need not be sorted
        for i in order:
            rows.append(
                [
                    variant,
                    emotion,
                    s,
                    "" if alpha is None else repr(alpha),
                    u["fold"][i],
                    u["id"][i],
                    y_true[i],
                    repr(float(score[i])),
                    y_pred[i],
                    u["spk"][i],
                    u["rat"][i],
                ]
            )
        if variant in ("fair_spk", "fair_rat", "dnn"):
            perm = rng.permutation(n)  # a different order per file
            emb = rng.normal(0, 1, (n, 16)).astype(np.float32)
            emb[:, 0] += 3.0 * (u["spk"] == "M")
            emb[:, 1] += 3.0 * (u["rat"] == "M")
            (root / "embeddings").mkdir(exist_ok=True)
            np.savez(
                root / "embeddings" / f"{variant}_{emotion}_seed{s}.npz",
                utterance_id=u["id"][perm],
                embedding=emb[perm],
                speaker_gender=u["spk"][perm],
                rater_gender=u["rat"][perm],
            )
    with (root / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    s2 = u["rat"] != ""
    study_sets = {
        "S1": {
            "n": n,
            "per_class": {e: int(np.sum(u["label"] == e)) for e in EMOTIONS},
            "per_group": {g: int(np.sum(u["spk"] == g)) for g in ("F", "M")},
        },
        "S2": {
            "n": int(s2.sum()),
            "per_class": {
                e: int(np.sum(u["label"][s2] == e)) for e in EMOTIONS
            },
        },
    }
    results = {"study_sets": study_sets, "runs": runs}
    if two_sided:
        alphas = rng.beta(2, 2, 40 * len(SEEDS))
        edges = np.linspace(0, 1, 21)
        results["alpha_trace"] = {
            "anger": {
                "bin_edges": edges.tolist(),
                "counts": np.histogram(alphas, edges)[0].tolist(),
                "mean": float(alphas.mean()),
                "sd": float(alphas.std()),
                "num_batches": alphas.size,
                "num_runs": len(SEEDS),
            }
        }
    (root / "results.json").write_text(json.dumps(results, indent=1))
    config = {
        "variants": sorted({r["variant"] for r in runs}),
        "emotions": list(EMOS),
        "seeds": list(SEEDS),
        "train": {"epochs": 3, "batch_size": 32},
        "report": {"tsne_samples": 100},
    }
    (root / "config.json").write_text(json.dumps(config))
    if training:
        _write_training(root, config["variants"], rng)
    return results


def largest_fold(seed: int) -> int:
    """The fold with the most utterances of `make_workdir(seed=seed)`,
    the one Fig. 2 plots (the smallest on a tie)."""
    folds = _utterances(np.random.default_rng(seed))["fold"]
    return int(np.argmax(np.bincount(folds)))


def tsne_name(emotion: str, seed: int, workdir_seed: int = 0) -> str:
    return (
        f"fig2_tsne_{emotion}_seed{seed}_fold{largest_fold(workdir_seed)}.png"
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("full")
    make_workdir(root)
    document.write_report(root, tsne_sample_size=120)
    return root


# ------------------------------------------------------------ Markdown


_SPLIT = re.compile(r"(?<!\\)\|")


def section_tables(md: str, heading: str) -> list[list[list[str]]]:
    """Markdown tables under the '## ' heading that starts with `heading`."""
    lines = md.splitlines()
    start = next(
        i for i, ln in enumerate(lines) if ln.startswith("## " + heading)
    )
    out, current = [], None
    for ln in lines[start + 1 :]:
        if ln.startswith("## "):
            break
        if ln.startswith("|"):
            cells = [c.strip() for c in _SPLIT.split(ln)[1:-1]]
            if current is None:
                current = []
                out.append(current)
            if not set("".join(cells)) <= set(":-"):
                current.append(cells)
        else:
            current = None
    return out


def as_dicts(table: list[list[str]]) -> list[dict[str, str]]:
    header = table[0]
    return [dict(zip(header, row, strict=True)) for row in table[1:]]


def parse_pm(cell: str) -> tuple[float, float]:
    text = cell.replace("*", "").replace("†", "")
    mean, sd = text.split("±")
    return float(mean), float(sd)


def _ref_cell(results, variant, emotion, metric):
    vals = [
        r[metric]
        for r in results["runs"]
        if r["variant"] == variant and r["emotion"] == emotion
    ]
    scale = 100.0 if metric == "f1" else 1.0
    return (
        scale * float(np.mean(vals)),
        scale * float(np.std(vals, ddof=1)),
    )


# ----------------------------------------------------------- recompute


def test_recompute_matches_sklearn_and_fairlearn(workdir):
    recorded = json.loads((workdir / "results.json").read_text())["runs"]
    got = recompute.runs_from_predictions(workdir / "predictions.csv")
    assert len(got) == len(recorded) == len(_run_list(True))
    by_key = {recompute.run_key(r): r for r in got}
    for ref in recorded:
        run = by_key[recompute.run_key(ref)]
        assert run["alpha"] == ref["alpha"]
        for m in ("f1", "dsp_spk", "dsp_rat"):
            assert run[m] == pytest.approx(ref[m], abs=1e-12), (ref, m)
    # Non-trivial values: the planted biases differ between variants.
    spk = {r["variant"]: r["dsp_spk"] for r in got if r["seed"] == 0}
    assert spk["fair_rat"] > spk["fair_spk"] + 0.1
    assert recompute.verify_workdir(workdir) == got


def test_verify_detects_tampering(workdir, tmp_path):
    import shutil

    for name in ("results.json", "predictions.csv"):
        shutil.copy(workdir / name, tmp_path / name)
    results = json.loads((tmp_path / "results.json").read_text())

    def check(mutate, pattern):
        tampered = json.loads(json.dumps(results))
        mutate(tampered)
        (tmp_path / "results.json").write_text(json.dumps(tampered))
        with pytest.raises(recompute.ResultsMismatchError, match=pattern):
            recompute.verify_workdir(tmp_path)

    def bump(r):
        r["runs"][3]["dsp_rat"] += 1e-8

    check(bump, r"dsp_rat is .* recomputed")
    check(lambda r: r["runs"].pop(), "missing from results.json")
    check(
        lambda r: r["study_sets"]["S1"]["per_class"].update(anger=0),
        r"per_class\.anger = 0",
    )
    # Below the tolerance: accepted.
    tiny = json.loads(json.dumps(results))
    tiny["runs"][0]["f1"] += 1e-12
    (tmp_path / "results.json").write_text(json.dumps(tiny))
    assert len(recompute.verify_workdir(tmp_path)) == len(results["runs"])


def test_bad_predictions_name_file_and_line(tmp_path):
    path = tmp_path / "predictions.csv"
    good = ["dnn", "anger", "0", "", "0", "u1", "1", "0.7", "1", "M", "F"]
    other = ["dnn", "anger", "0", "", "0", "u2", "0", "0.2", "0", "F", ""]
    bad = list(good)
    bad[5], bad[8] = "u3", "0.9"

    def write(*rows):
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([COLUMNS, *rows])

    write(good, other, bad)
    with pytest.raises(ValueError, match=r"predictions\.csv:4: .*y_pred"):
        recompute.runs_from_predictions(path)
    write(good, other, good)
    with pytest.raises(ValueError, match=r":4: utterance 'u1' appears twice"):
        recompute.runs_from_predictions(path)
    path.write_text("variant,emotion\n")
    with pytest.raises(ValueError, match="1: header must be variant,emotion"):
        recompute.runs_from_predictions(path)


# -------------------------------------------------------------- tables


METRICS = (
    ("f1", "F1 (%)", 0.0051),
    ("dsp_spk", "ΔSP_spk", 0.00051),
    ("dsp_rat", "ΔSP_rat", 0.00051),
)
MODELS = (("dnn", "DNN"), ("fair_spk", "Fair_spk"), ("fair_rat", "Fair_rat"))
INTRA = {("fair_spk", "dsp_spk"), ("fair_rat", "dsp_rat")}
INTER = {("fair_spk", "dsp_rat"), ("fair_rat", "dsp_spk")}


def test_table2_blocks_numbers_and_markers(workdir):
    """One block per metric: rows = ours then the paper's, cols = emotions."""
    results = json.loads((workdir / "results.json").read_text())
    md = (workdir / "report.md").read_text()
    blocks = section_tables(md, "Table 2")
    # The paper's three metrics, then ΔEOd / ΔEOpp of each side (tested in
    # test_other_fairness_views_are_extra_table_blocks).
    assert len(blocks) == len(METRICS) + 4
    for block, (metric, head, tol) in zip(blocks[:3], METRICS, strict=True):
        assert f"### {head}" in md
        assert block[0] == ["Model"] + [e.capitalize() for e in EMOS]
        rows = {r["Model"]: r for r in as_dicts(block)}
        assert list(rows) == [name for _, name in MODELS] + [
            f"{name} (paper)" for _, name in MODELS
        ]
        for variant, name in MODELS:
            for emotion in EMOS:
                cell = rows[name][emotion.capitalize()]
                mean, sd = parse_pm(cell)
                ref_mean, ref_sd = _ref_cell(results, variant, emotion, metric)
                assert mean == pytest.approx(ref_mean, abs=tol), cell
                assert sd == pytest.approx(ref_sd, abs=tol), cell
                paper = rows[f"{name} (paper)"][emotion.capitalize()]
                for c in (cell, paper):
                    assert c.startswith("**") == ((variant, metric) in INTRA)
                    assert c.endswith("*†") == ((variant, metric) in INTER)
    assert "**Bold**: intra-fairness" in md
    assert "Seeds per model: DNN: 2 (0–1)" in md
    spk = {r["Model"]: r for r in as_dicts(blocks[1])}
    assert spk["Fair_spk (paper)"]["Anger"] == "**0.234**"
    assert spk["Fair_rat (paper)"]["Neutral"] == "*0.403*†"
    f1 = {r["Model"]: r for r in as_dicts(blocks[0])}
    assert f1["DNN (paper)"]["Neutral"] == "77.73"
    assert f1["DNN (paper)"]["Anger"] == str(
        variants_lib.paper_value("dnn", "anger", "f1")
    )


def test_table1_counts(workdir):
    results = json.loads((workdir / "results.json").read_text())
    md = (workdir / "report.md").read_text()
    (t1,) = section_tables(md, "Table 1")
    rows = {r["Set"]: r for r in as_dicts(t1)}
    assert t1[0] == ["Set", "Overall"] + [e.capitalize() for e in EMOTIONS]
    for s in ("S1", "S2"):
        ref = results["study_sets"][s]
        assert int(rows[f"{s} (ours)"]["Overall"]) == ref["n"]
        for e in EMOTIONS:
            assert (
                int(rows[f"{s} (ours)"][e.capitalize()])
                == (ref["per_class"][e])
            )
    assert rows["S1 (paper)"]["Overall"] == "7362"
    assert rows["S2 (paper)"]["Happiness"] == "446"


def test_table3_and_fixed_alpha(workdir):
    results = json.loads((workdir / "results.json").read_text())
    md = (workdir / "report.md").read_text()
    ours, paper = section_tables(md, "Table 3")
    assert ours[0] == ["Metric", "Model", "Neutral", "Anger"]
    cells = {
        (r[0], r[1]): dict(zip(ours[0][2:], r[2:], strict=True))
        for r in ours[1:]
    }
    for variant, name in (("basic", "Basic"), ("proposed", "Proposed")):
        for e in EMOS:
            col = e.capitalize()
            for metric, label, tol in (
                ("f1", "F1 (%)", 0.0051),
                ("dsp_spk", "ΔSP_spk", 0.00051),
                ("dsp_rat", "ΔSP_rat", 0.00051),
            ):
                mean, sd = parse_pm(cells[(label, name)][col])
                ref = _ref_cell(results, variant, e, metric)
                assert (mean, sd) == pytest.approx(ref, abs=tol)
            spk = _ref_cell(results, variant, e, "dsp_spk")[0]
            rat = _ref_cell(results, variant, e, "dsp_rat")[0]
            prod = float(cells[("ΔSP_spk × ΔSP_rat", name)][col])
            gap = float(cells[("\\|ΔSP_spk − ΔSP_rat\\|", name)][col])
            assert prod == pytest.approx(spk * rat, abs=0.00051)
            assert gap == pytest.approx(abs(spk - rat), abs=0.00051)
    assert cells[("F1 (%)", "Basic")]["Anger"] != tables.MISSING
    assert ["F1 (%)", "Basic (paper)", "66.26 ± 2.277", "69.70 ± 2.776"] in (
        paper
    )
    (sweep,) = section_tables(md, "Fixed α sweep")
    rows = {r[0]: r[1] for r in sweep[1:]}
    assert set(rows) == {"0.25", "0.5", "0.75", "Proposed"}
    for key, variant, alpha in [("0.5", "fixed_alpha", 0.5)] + [
        ("Proposed", "proposed", None)
    ]:
        prods = [
            r["dsp_spk"] * r["dsp_rat"]
            for r in results["runs"]
            if r["variant"] == variant
            and r["emotion"] == "anger"
            and r["alpha"] == alpha
        ]
        mean, sd = parse_pm(rows[key])
        assert mean == pytest.approx(np.mean(prods), abs=0.00051)
        assert sd == pytest.approx(np.std(prods, ddof=1), abs=0.00051)


def test_report_sections_and_config(workdir):
    md = (workdir / "report.md").read_text()
    assert md.startswith("# fairser_jax report")
    assert "- `train.epochs`: 3" in md
    assert "## How to recompute" in md
    assert "--recompute" in md
    for name in (
        tsne_name("anger", 0),
        "parity_bars.png",
        "fig3a_fixed_alpha_anger.png",
        "fig3b_alpha_hist_anger.png",
        "loss_curves.png",
    ):
        assert f"](figures/{name})" in md


# ------------------------------------------------------- CSV and LaTeX


def read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _np_mean_sd(values) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(np.mean(a)), float(np.std(a, ddof=1))


def _np_cell(results, variant, emotion, metric) -> tuple[float, float]:
    """Mean and sample SD over seeds with numpy, F1 in %."""
    scale = 100.0 if metric == "f1" else 1.0
    return _np_mean_sd(
        [
            scale * r[metric]
            for r in results["runs"]
            if r["variant"] == variant and r["emotion"] == emotion
        ]
    )


def test_report_links_every_table_file(workdir):
    md = (workdir / "report.md").read_text()
    names = sorted(p.stem for p in (workdir / "tables").glob("*.csv"))
    # claims.csv (report/claims.py) has no LaTeX twin; report.md links it.
    assert "[CSV](tables/claims.csv)" in md
    names.remove("claims")
    assert names == sorted(tables.table_names())
    assert sorted(p.stem for p in (workdir / "tables").glob("*.tex")) == names
    for name in names:
        assert f"[CSV](tables/{name}.csv)" in md
        assert f"[LaTeX](tables/{name}.tex)" in md
    assert not list((workdir / "tables").glob("*.tmp"))


def _table2_csv(folder, results, metric) -> dict[str, dict[str, str]]:
    """The rows of tables/table2_<metric>.csv by model, after checking
    that our models' cells are the numpy mean / SD of results.json."""
    rows = {r["Model"]: r for r in read_csv(folder / f"table2_{metric}.csv")}
    for variant, name in MODELS:
        for e in EMOS:
            col = e.capitalize()
            got = (
                float(rows[name][f"{col} mean"]),
                float(rows[name][f"{col} sd"]),
            )
            ref = _np_cell(results, variant, e, metric)
            assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)
    return rows


def test_csv_tables_equal_numpy_over_seeds(workdir):
    """Unrounded CSV numbers = numpy mean / SD (ddof=1) of results.json."""
    results = json.loads((workdir / "results.json").read_text())
    folder = workdir / "tables"
    for metric, _, _ in METRICS:
        rows = _table2_csv(folder, results, metric)
        for variant, name in MODELS:
            for e in EMOS:
                col = e.capitalize()
                paper = rows[f"{name} (paper)"]
                assert float(paper[f"{col} mean"]) == variants_lib.paper_value(
                    variant, e, metric
                )
                assert paper[f"{col} sd"] == ""

    t3 = {(r["Metric"], r["Model"]): r for r in read_csv(folder / "table3.csv")}
    for variant, name in (("basic", "Basic"), ("proposed", "Proposed")):
        for e in EMOS:
            col = e.capitalize()
            for metric, label, _ in METRICS:
                row = t3[(label, name)]
                got = (float(row[f"{col} mean"]), float(row[f"{col} sd"]))
                ref = _np_cell(results, variant, e, metric)
                assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)
            spk = _np_cell(results, variant, e, "dsp_spk")[0]
            rat = _np_cell(results, variant, e, "dsp_rat")[0]
            product = t3[("ΔSP_spk × ΔSP_rat", name)]
            gap = t3[("|ΔSP_spk − ΔSP_rat|", name)]
            assert float(product[f"{col} mean"]) == pytest.approx(spk * rat)
            assert float(gap[f"{col} mean"]) == pytest.approx(abs(spk - rat))
            assert product[f"{col} sd"] == gap[f"{col} sd"] == ""
            per_seed = t3[("ΔSP_spk × ΔSP_rat per seed", name)]
            ref = _np_mean_sd(
                [
                    r["dsp_spk"] * r["dsp_rat"]
                    for r in results["runs"]
                    if r["variant"] == variant and r["emotion"] == e
                ]
            )
            got = (float(per_seed[f"{col} mean"]), float(per_seed[f"{col} sd"]))
            assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)
    paper3 = {
        (r["Metric"], r["Model"]): r
        for r in read_csv(folder / "table3_paper.csv")
    }
    assert paper3[("F1 (%)", "Basic (paper)")]["Anger mean"] == "69.7"
    assert paper3[("F1 (%)", "Basic (paper)")]["Anger sd"] == "2.776"

    sweep = {r["α"]: r for r in read_csv(folder / "fixed_alpha.csv")}
    assert set(sweep) == {"0.25", "0.5", "0.75", "Proposed"}
    col = "Anger ΔSP_spk × ΔSP_rat"
    for key, variant, alpha in [(repr(a), "fixed_alpha", a) for a in ALPHAS] + [
        ("Proposed", "proposed", None)
    ]:
        ref = _np_mean_sd(
            [
                r["dsp_spk"] * r["dsp_rat"]
                for r in results["runs"]
                if r["variant"] == variant
                and r["emotion"] == "anger"
                and r["alpha"] == alpha
            ]
        )
        got = (float(sweep[key][f"{col} mean"]), float(sweep[key][f"{col} sd"]))
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)

    t1 = {r["Set"]: r for r in read_csv(folder / "table1.csv")}
    for s in ("S1", "S2"):
        ref = results["study_sets"][s]
        assert int(t1[f"{s} (ours)"]["Overall"]) == ref["n"]
        for e in EMOTIONS:
            assert int(t1[f"{s} (ours)"][e.capitalize()]) == ref["per_class"][e]
    assert t1["S2 (paper)"]["Happiness"] == "446"


_UNESCAPED_AMP = re.compile(r"(?<!\\)&")
_PM_CELL = re.compile(r"^\$\d+\.\d+ \\pm \d+\.\d+\$$")


def parse_booktabs(text: str) -> tuple[str, list[list[str]], int]:
    """(column spec, rows of cells, number of \\midrule) of a .tex file;
    asserts the booktabs frame and one cell per column in every row."""
    lines = [ln for ln in text.splitlines() if not ln.startswith("%")]
    assert lines[0].startswith("\\begin{tabular}{") and lines[0].endswith("}")
    spec = lines[0][len("\\begin{tabular}{") : -1]
    assert set(spec) <= {"l", "r"}, spec
    assert lines[1] == "\\toprule"
    assert lines[3] == "\\midrule"  # below the header
    assert lines[-2:] == ["\\bottomrule", "\\end{tabular}"]
    rows, rules = [], 0
    for ln in lines[2:-2]:
        if ln == "\\midrule":
            rules += 1
            continue
        assert ln.endswith(" \\\\"), ln
        body = ln[: -len(" \\\\")]
        assert len(_UNESCAPED_AMP.findall(body)) == len(spec) - 1, ln
        cells = [c.strip() for c in _UNESCAPED_AMP.split(body)]
        for c in cells:
            # Specials are escaped (math cells hold only digits, \pm …).
            assert not re.search(r"(?<!\\)[_%#]", c), c
            assert "Δ" not in c and "±" not in c and "×" not in c, c
        rows.append(cells)
    return spec, rows, rules


def test_latex_tables_are_booktabs(workdir):
    folder = workdir / "tables"
    for name in tables.table_names():
        spec, rows, _ = parse_booktabs((folder / f"{name}.tex").read_text())
        data = read_csv(folder / f"{name}.csv")
        assert len(rows) == 1 + len(data), name  # header + one per CSV row
    spec, rows, rules = parse_booktabs(
        (folder / "table2_dsp_spk.tex").read_text()
    )
    assert spec == "l" + "r" * len(EMOS)
    assert rules == 2  # below the header, between ours and the paper's
    assert rows[0] == ["Model", "Neutral", "Anger"]
    by_model = {r[0]: r[1:] for r in rows[1:]}
    assert set(by_model) >= {"DNN", "Fair\\_spk", "Fair\\_rat (paper)"}
    assert all(_PM_CELL.match(c) for c in by_model["DNN"]), by_model["DNN"]
    # Intra-fairness bold, inter-fairness italic with a dagger.
    assert all(c.startswith("$\\mathbf{") for c in by_model["Fair\\_spk"])
    assert all(
        c.startswith("$\\mathit{") and c.endswith("^{\\dagger}$")
        for c in by_model["Fair\\_rat"]
    )
    assert by_model["Fair\\_spk (paper)"][1] == "$\\mathbf{0.234}$"
    # The rounded LaTeX numbers are the CSV's.
    csv_rows = {r["Model"]: r for r in read_csv(folder / "table2_dsp_spk.csv")}
    mean = float(csv_rows["DNN"]["Neutral mean"])
    sd = float(csv_rows["DNN"]["Neutral sd"])
    assert by_model["DNN"][0] == f"${mean:.3f} \\pm {sd:.3f}$"
    _, rows, _ = parse_booktabs((folder / "table2_f1.tex").read_text())
    assert rows[1][0] == "DNN"
    header = parse_booktabs((folder / "table3.tex").read_text())[1][0]
    assert header[:2] == ["Metric", "Model"]
    labels = [
        r[0] for r in parse_booktabs((folder / "table3.tex").read_text())[1]
    ]
    assert "F1 (\\%)" in labels
    assert (
        "\\ensuremath{|}\\ensuremath{\\Delta}SP\\_spk \\ensuremath{-} "
        "\\ensuremath{\\Delta}SP\\_rat\\ensuremath{|}"
    ) in labels


def test_latex_escape_and_a_table_with_specials():
    assert tables.latex_escape("a_b 50% & #1 $x {y} ~ ^ \\") == (
        "a\\_b 50\\% \\& \\#1 \\$x \\{y\\} \\textasciitilde{} "
        "\\textasciicircum{} \\textbackslash{}"
    )
    assert tables.latex_escape("ΔSP × α ± 1") == (
        "\\ensuremath{\\Delta}SP \\ensuremath{\\times} "
        "\\ensuremath{\\alpha} \\ensuremath{\\pm} 1"
    )
    cell = tables.Cell
    table = tables.Table(
        name="t",
        title="100% of R&D #1",
        header=("a_b", "c & d"),
        rows=(
            (cell("x_1 & #2"), cell(0.5, 0.25, digits=2)),
            (cell("y"), cell(None)),
        ),
        paired=(False, True),
        align=("l", "r"),
    )
    tex = table.latex()
    assert tex.splitlines()[0] == "% 100\\% of R\\&D \\#1"
    _, rows, _ = parse_booktabs(tex)
    assert rows == [
        ["a\\_b", "c \\& d"],
        ["x\\_1 \\& \\#2", "$0.50 \\pm 0.25$"],
        ["y", "---"],
    ]
    assert table.csv_rows() == [
        ["a_b", "c & d mean", "c & d sd"],
        ["x_1 & #2", 0.5, 0.25],
        ["y", "", ""],
    ]
    assert table.markdown().splitlines()[2] == "| x_1 & #2 | 0.50 ± 0.25 |"
    with pytest.raises(ValueError, match="2 columns"):
        tables.Table("t", "t", ("a", "b"), (), (False,), ("l", "r"))


# ------------------------------------------------------------- figures


def _assert_png(path: pathlib.Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("L"))
    assert 400 <= w <= 3000 and 300 <= h <= 3000, (path, w, h)
    assert pixels.std() > 5, f"{path} looks blank"
    return w, h


def test_figures_are_valid_pngs(workdir):
    found = sorted((workdir / "figures").glob("*.png"))
    assert [p.name for p in found] == [
        tsne_name("anger", 0),
        "fig3a_fixed_alpha_anger.png",
        "fig3b_alpha_hist_anger.png",
        "loss_curves.png",
        "pareto_anger.png",
        "pareto_neutral.png",
        "parity_bars.png",
    ]
    sizes = {p.name: _assert_png(p) for p in found}
    w, h = sizes[tsne_name("anger", 0)]
    assert h > 0.8 * w  # 2 x 2 panels


def test_every_png_has_a_pdf(workdir):
    md = (workdir / "report.md").read_text()
    pngs = sorted((workdir / "figures").glob("*.png"))
    pdfs = sorted((workdir / "figures").glob("*.pdf"))
    assert [p.stem for p in pdfs] == [p.stem for p in pngs]
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-"), pdf
        assert data.rstrip().endswith(b"%%EOF"), pdf
        assert b"/Type3" not in data, f"{pdf} embeds Type 3 fonts"
        assert f"([PDF](figures/{pdf.name}))" in md
    assert not list((workdir / "figures").glob("*.tmp"))


def test_loss_curves_equal_numpy(workdir):
    curves = figures.loss_curves(workdir)
    assert list(curves) == [
        "dnn",
        "fair_spk",
        "fair_rat",
        "basic",
        "proposed",
        "fixed_alpha",
    ]
    fig = figures.draw_loss_curves(curves)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(curves)
    for ax, (variant, curve) in zip(axes, curves.items(), strict=True):
        with np.load(workdir / "training" / f"{variant}.npz") as f:
            history = f["loss_history"].astype(np.float64)
            assert curve.num_runs == len(f["run"]) == history.shape[0]
        mean = np.mean(history, axis=0)
        sd = np.std(history, axis=0, ddof=1)
        np.testing.assert_allclose(curve.mean, mean, rtol=1e-12)
        np.testing.assert_allclose(curve.sd, sd, rtol=1e-12)
        x, y = ax.lines[0].get_data()
        np.testing.assert_array_equal(x, np.arange(1, NUM_EPOCHS + 1))
        np.testing.assert_allclose(y, mean, rtol=1e-12)
        # The band spans mean ± SD.
        (band,) = ax.collections
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(np.min(mean - sd))
        assert ys.max() == pytest.approx(np.max(mean + sd))
        assert ax.get_title().startswith(
            tables.variants_lib.display_name(variant)
        )
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
    scales = {v: ax.get_yscale() for ax, v in zip(axes, curves, strict=True)}
    assert scales["dnn"] == "log"  # two decades
    assert scales["fair_spk"] == "linear"  # negative loss
    assert scales["fair_rat"] == "linear"  # a narrow range
    assert "±" in fig.get_suptitle()
    _assert_png(workdir / "figures" / "loss_curves.png")


def test_summarize_loss_skips_epochs_not_run():
    history = np.array([[3.0, 2.0, np.nan], [1.0, np.nan, np.nan]])
    mean, sd = figures.summarize_loss(history)
    np.testing.assert_allclose(mean[:2], [2.0, 2.0])
    np.testing.assert_allclose(sd[:2], [np.std([3.0, 1.0], ddof=1), 0.0])
    assert np.isnan(mean[2]) and np.isnan(sd[2])


def test_load_training_names_bad_file(tmp_path):
    path = tmp_path / "dnn.npz"
    np.savez(path, run=np.array(["a", "b"]), loss_history=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"dnn\.npz: 'loss_history' must be"):
        figures.load_training(path)
    np.savez(path, run=np.array(["a"]))
    with pytest.raises(
        ValueError, match=r"missing array\(s\) \['loss_history'\]"
    ):
        figures.load_training(path)


def test_parity_bars_have_a_title(workdir, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(
        figures, "_save", lambda fig, path: drawn.append(fig) or path
    )
    results = json.loads((workdir / "results.json").read_text())
    path = figures.parity_bars_figure(results, tmp_path)
    assert path == tmp_path / "parity_bars.png"
    title = drawn[0].get_suptitle()
    assert "ΔSP_spk" in title and "ΔSP_rat" in title and "SD" in title


def test_one_sided_workdir_omits_absent_parts(tmp_path):
    make_workdir(tmp_path, two_sided=False, seed=1, training=False)
    # A table file of an earlier, two-sided report is removed.
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "table3.csv").write_text("stale")
    (tmp_path / "tables" / "notes.txt").write_text("mine")
    # Only the neutral embeddings: t-SNE falls back from anger.
    for p in (tmp_path / "embeddings").glob("*_anger_*.npz"):
        p.unlink()
    (tmp_path / "embeddings" / "fair_rat_neutral_seed0.npz").unlink()
    paths = figures.make_figures(
        tmp_path,
        json.loads((tmp_path / "results.json").read_text()),
        tsne_sample_size=60,
    )
    assert paths["alpha_histogram"] == []
    assert paths["fixed_alpha"] == []
    # No training/ folder: no loss curves, no error.
    assert paths["loss_curves"] == []
    assert figures.loss_curves(tmp_path) == {}
    # fair_rat lacks seed 0: the seed where both models exist is used.
    (tsne,) = paths["tsne"]
    assert tsne.name == tsne_name("neutral", 1, workdir_seed=1)
    _assert_png(tsne)
    _assert_png(paths["parity_bars"][0])
    md = document.write_report(tmp_path, figures=False).read_text()
    assert "## Table 2" in md
    assert "Table 3" not in md and "Fixed α" not in md
    assert "fig3" not in md and tsne_name("neutral", 1, 1) in md
    assert "loss_curves" not in md
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(
        [
            f"{n}.{x}"
            for n in (
                "table1",
                *(f"table2_{m}" for m in tables.metric_headers()),
            )
            for x in ("csv", "tex")
        ]
        + ["notes.txt", "claims.csv"]
    )


def test_tsne_absent_inputs_return_none(tmp_path):
    assert figures.tsne_figure(tmp_path) is None
    assert figures.parity_bars_figure({"runs": []}, tmp_path) is None


# ----------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "fairser_jax.report", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_recompute_and_tampering(workdir, tmp_path):
    import shutil

    for name in ("results.json", "predictions.csv", "config.json"):
        shutil.copy(workdir / name, tmp_path / name)
    ok = _cli(f"--workdir={tmp_path}", "--recompute", "--nofigures")
    assert ok.returncode == 0, ok.stderr
    assert "match predictions.csv" in ok.stdout
    assert (tmp_path / "report.md").is_file()

    results = json.loads((tmp_path / "results.json").read_text())
    results["runs"][5]["f1"] = 0.5
    (tmp_path / "results.json").write_text(json.dumps(results))
    bad = _cli(f"--workdir={tmp_path}", "--recompute", "--nofigures")
    assert bad.returncode == 1
    assert "disagrees with a recomputation" in bad.stderr
    key = recompute.format_key(recompute.run_key(results["runs"][5]))
    assert f"{key}: f1 is 0.5 in results.json" in bad.stderr

    # A results.json of an older release lacks the newer metrics: said so,
    # with the command that rewrites it.
    del results["runs"][5]["eod_rat"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    old = _cli(f"--workdir={tmp_path}", "--recompute", "--nofigures")
    assert old.returncode == 1
    assert f"{key}: results.json has no eod_rat (written by an older" in (
        old.stderr
    )
    assert "fairser_jax.train --resume" in old.stderr


def test_missing_results_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m fairser_jax.train"):
        document.write_report(tmp_path)
    proc = _cli(f"--workdir={tmp_path}")
    assert proc.returncode == 1
    assert "no results.json" in proc.stderr
    assert "python -m fairser_jax.train" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_other_fairness_views_are_extra_table_blocks(workdir):
    """ΔEOd and ΔEOpp of each side: a Table 2 block each (ours only, the
    paper has none) and rows of Table 3, with the numpy mean / SD over
    seeds of results.json, whose values come from fairlearn."""
    results = json.loads((workdir / "results.json").read_text())
    folder = workdir / "tables"
    md = (workdir / "report.md").read_text()
    for metric in ("eod_spk", "eod_rat", "eopp_spk", "eopp_rat"):
        assert f"### {tables.block_title(metric)}" in md
        rows = _table2_csv(folder, results, metric)
        assert sorted(rows) == sorted(name for _, name in MODELS)
    t3 = {(r["Metric"], r["Model"]): r for r in read_csv(folder / "table3.csv")}
    for metric in ("eod_spk", "eod_rat", "eopp_spk", "eopp_rat"):
        label = tables.metric_headers()[metric]
        for variant, name in (("basic", "Basic"), ("proposed", "Proposed")):
            for e in EMOS:
                got = float(t3[(label, name)][f"{e.capitalize()} mean"])
                ref = _np_cell(results, variant, e, metric)[0]
                assert got == pytest.approx(ref, rel=1e-12)
    # Intra/inter marks follow the side, as for ΔSP.
    assert tables.fairness_view("fair_spk", "eod_spk") == "intra"
    assert tables.fairness_view("fair_spk", "eopp_rat") == "inter"
    assert tables.fairness_view("dnn", "eod_spk") is None


def test_results_of_an_older_release_get_no_empty_blocks(tmp_path):
    """A results.json without ΔEOd / ΔEOpp (older release): the report
    shows the paper's metrics only, no columns of dashes."""
    results = make_workdir(tmp_path, two_sided=True)
    for run in results["runs"]:
        for metric in ("eod_spk", "eod_rat", "eopp_spk", "eopp_rat"):
            del run[metric]
    (tmp_path / "results.json").write_text(json.dumps(results))
    md = document.write_report(tmp_path, figures=False).read_text()
    assert "ΔEOd" not in md and "ΔEOpp" not in md
    assert not (tmp_path / "tables" / "table2_eod_spk.csv").exists()
    assert "ΔSP_rat" in md


# ------------------------------------------- small values, ΔEOd = ΔEOpp


def _significant(text: str) -> int:
    """Significant digits printed in a decimal such as '0.0016' (2)."""
    digits = text.strip().lstrip("-").replace(".", "").lstrip("0")
    return len(digits)


def test_small_products_keep_two_significant_digits():
    """0.0016 and 0.0024 (products of ΔSP ≈ 0.04) print apart, with the
    numpy mean ± SD over seeds; the CSV keeps the unrounded values."""
    runs = []
    for alpha, rats in ((0.25, (0.04, 0.06)), (0.5, (0.05, 0.07))):
        for seed, rat in enumerate(rats):
            runs.append(
                {
                    "variant": "fixed_alpha",
                    "emotion": "anger",
                    "seed": seed,
                    "alpha": alpha,
                    "dsp_spk": 0.04 if alpha == 0.25 else 0.05,
                    "dsp_rat": rat,
                }
            )
    table = tables.fixed_alpha_table(runs)
    md = {
        r[0]: r[1]
        for r in (
            [c.strip() for c in line.split("|")[1:-1]]
            for line in table.markdown().splitlines()[2:]
        )
    }
    # By hand: 0.04 × {0.04, 0.06} = {0.0016, 0.0024}, mean 0.002,
    # SD 0.0008 / √2 = 0.00057.
    assert md == {"0.25": "0.0020 ± 0.0006", "0.5": "0.0030 ± 0.0007"}
    for alpha, cell in md.items():
        prods = [
            r["dsp_spk"] * r["dsp_rat"]
            for r in runs
            if r["alpha"] == float(alpha)
        ]
        mean, sd = parse_pm(cell)
        decimals = len(cell.split("±")[0].strip().split(".")[1])
        half_ulp = 0.5 * 10.0**-decimals
        assert abs(mean - np.mean(prods)) <= half_ulp + 1e-15
        assert abs(sd - np.std(prods, ddof=1)) <= half_ulp + 1e-15
    assert r"$0.0020 \pm 0.0006$" in table.latex()
    header, *rows = list(csv.reader(table.csv().splitlines()))
    assert header == [
        "α",
        "Anger ΔSP_spk × ΔSP_rat mean",
        "Anger ΔSP_spk × ΔSP_rat sd",
    ]
    assert float(rows[0][1]) == pytest.approx(0.002, rel=1e-12)
    assert float(rows[0][2]) == pytest.approx(0.0008 / np.sqrt(2), rel=1e-12)
    # The SD keeps a digit, the mean its usual 3 decimals when they do.
    assert tables.Cell(0.254, 0.0004, digits=3, sig=2).markdown() == (
        "0.2540 ± 0.0004"
    )
    assert tables.Cell(0.2541, 0.012, digits=3, sig=2).markdown() == (
        "0.254 ± 0.012"
    )


def test_report_parities_have_two_significant_digits(workdir):
    """Every parity cell of ours in Table 3 and the fixed-α sweep shows at
    least two significant digits of its mean."""
    md = (workdir / "report.md").read_text()
    ours, _ = section_tables(md, "Table 3")
    (sweep,) = section_tables(md, "Fixed α sweep")
    cells = [c for row in ours[1:] if row[0] != "F1 (%)" for c in row[2:]]
    cells += [c for row in sweep[1:] for c in row[1:]]
    assert len(cells) > 20
    for cell in cells:
        mean = cell.replace("*", "").replace("†", "").split("±")[0]
        assert float(mean) == 0 or _significant(mean) >= 2, cell


def test_eod_eopp_note_explains_equal_cells(workdir):
    """One note, under the ΔEOpp_spk block (the first table after which
    both views of a side have been shown), counts the runs where ΔEOd =
    ΔEOpp per side as fairlearn computed them; and the reason it gives
    (ΔEOd = max(TPR gap, FPR gap), ΔEOpp = TPR gap) holds for every run."""
    md = (workdir / "report.md").read_text()
    results = json.loads((workdir / "results.json").read_text())
    runs = results["runs"]
    heading = "Why ΔEOd often equals ΔEOpp."
    assert md.count(heading) == 1
    at = md.index(heading)
    assert md.index("### ΔEOpp_spk") < at < md.index("### ΔEOpp_rat")
    for side, where in (("spk", "speaker side"), ("rat", "rater side")):
        same = sum(
            abs(r[f"eod_{side}"] - r[f"eopp_{side}"]) <= 1e-12 for r in runs
        )
        assert f"{same} of {len(runs)} runs on the {where}" in md
    by_run = {}
    with (workdir / "predictions.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            key = (row["variant"], row["emotion"], row["seed"], row["alpha"])
            by_run.setdefault(key, []).append(row)
    assert len(by_run) == len(runs)
    for rows in by_run.values():
        y = np.array([int(r["y_true"]) for r in rows])
        p = np.array([int(r["y_pred"]) for r in rows])
        for col in ("speaker_gender", "rater_gender"):
            g = np.array([r[col] for r in rows])
            keep = g != ""
            args = (y[keep], p[keep])
            kw = {"sensitive_features": g[keep]}
            eod = equalized_odds_difference(*args, **kw)
            tpr = equal_opportunity_difference(*args, **kw)
            fpr = false_positive_rate_difference(*args, **kw)
            assert eod == pytest.approx(max(tpr, fpr), abs=1e-12)


def test_figure_alt_text_and_captions_name_the_detector(tmp_path):
    """Each Fig. 3 figure's alt text and caption name its emotion (five
    histograms no longer read the same); Fig. 2's name its seed and fold;
    a Fig. 2 of an older release (no fold: pooled fold models) is not
    linked."""
    make_workdir(tmp_path, training=False)
    folder = tmp_path / "figures"
    folder.mkdir()
    names = [
        "fig2_tsne_anger_seed0.png",
        "fig2_tsne_anger_seed0_fold3.png",
        "fig3b_alpha_hist_anger.png",
        "fig3b_alpha_hist_sadness.png",
        "fig3a_fixed_alpha_anger.png",
    ]
    for name in names:
        (folder / name).write_bytes(b"")
    md = document.write_report(tmp_path, figures=False).read_text()
    alts = re.findall(r"!\[([^\]]*)\]\(figures/([^)]*)\)", md)
    by_file = {f: a for a, f in alts}
    assert "fig2_tsne_anger_seed0.png" not in by_file
    assert set(by_file) == set(names[1:])
    assert len(set(by_file.values())) == len(by_file)
    assert "Anger detector, seed 0, fold 3" in by_file[names[1]]
    assert "Anger" in by_file[names[2]]
    assert "Sadness" in by_file[names[3]]
    assert "Anger" in by_file[names[4]]
    for name, emotion in zip(
        names[1:], ("Anger", "Anger", "Sadness", "Anger"), strict=True
    ):
        line = md.split(f"](figures/{name})", 1)[1].split("\n\n")[1]
        assert f"{emotion} detector" in line, line
    assert "bootstrap" not in md


def test_a_small_group_marks_the_cells_that_rest_on_it(tmp_path):
    """A speaker group of 3 utterances (fewer than results.SMALL_GROUP):
    each of our cells computed over the speaker groups (ΔSP_spk, ΔEOd_spk,
    ΔEOpp_spk, the ΔSP products and gap) is marked §; F1, the rater side
    and the paper's rows are not; the note under Tables 2 and 3 names the
    group and its size. Without a small group nothing is marked."""
    results = make_workdir(tmp_path)
    assert "§" not in "".join(
        t.markdown() for t in tables.report_tables(results).values()
    )
    results["study_sets"]["S1"]["per_group"] = {"F": 57, "M": 3}
    tabs = tables.report_tables(results)
    checked = 0
    for name, table in tabs.items():
        ours = table.rows[: table.breaks[0]] if table.breaks else table.rows
        if name.startswith("table2_"):
            rows = [(name.removeprefix("table2_"), r[1:]) for r in ours]
            rows += [("paper", r[1:]) for r in table.rows[len(ours) :]]
        elif name == "table3":
            rows = [(str(r[0].value), r[2:]) for r in table.rows]
        elif name == "fixed_alpha":
            rows = [("product", r[1:]) for r in table.rows]
        else:
            continue
        for label, cells in rows:
            for cell in cells:
                if cell.value is None:
                    continue
                over_speakers = label != "paper" and (
                    label.endswith("_spk")
                    or "spk" in label
                    or "product" in label
                )
                assert cell.small == over_speakers, (name, label, cell)
                assert cell.markdown().endswith("§") == over_speakers
                assert cell.latex().endswith(r"\S{}") == over_speakers
                checked += 1
    assert checked > 100
    md = document.render_report(
        results, None, {}, workdir=tmp_path, constant={}, claims=[]
    )
    notes = [ln for ln in md.splitlines() if ln.startswith("§ **Small")]
    assert len(notes) == 2  # under Tables 2 and 3
    for note in notes:
        assert "speaker group(s) in S1 'M' (3)" in note
        assert "rater" not in note

"""Tests of the claims report (`fairser_jax.report.claims`).

A small synthetic workdir (a hand-written predictions.csv: DNN, Fair_spk,
Fair_rat, Basic, Proposed, Basic from Fair_rat and a fixed-α sweep, six
seeds, planted parities) is evaluated, and every row of claims.csv is
compared with a plain NumPy / SciPy recomputation from predictions.csv:
ΔSP = |P(ŷ=1 | g=M) − P(ŷ=1 | g=F)|, weighted F1 by hand,
`scipy.stats.binomtest` for the sign test (paper §2.2.3, §3.2;
docs/DESIGN.md, "Claims report").
"""

from __future__ import annotations

import ast
import csv
import json
import pathlib

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from fairser_jax import results as results_lib
from fairser_jax.report import claims, document, figures

COLUMNS = (
    "variant,emotion,seed,alpha,fold,utterance_id,y_true,y_score,y_pred,"
    "speaker_gender,rater_gender"
).split(",")
N = 240
SEEDS = tuple(range(6))
# (speaker-side shift, rater-side shift) of P(ŷ=1) for M vs F.
BIAS = {
    "dnn": (0.35, 0.5),
    "fair_spk": (0.0, 0.0),
    "fair_rat": (0.4, 0.25),
    "basic": (0.3, 0.3),
    "basic_anchored": (0.3, 0.3),
    "proposed": (0.0, 0.0),
    "fixed_alpha": (0.35, 0.35),
}
ALPHAS = (0.25, 0.5, 0.75)
CONSTANT = ("dnn", "anger", 5, None)  # predicts 0 for every utterance


def _layout() -> dict[str, np.ndarray]:
    i = np.arange(N)
    return {
        "id": np.array([f"u{k:03d}" for k in i]),
        "fold": i % 5,
        "spk": np.where(i % 2 == 0, "F", "M"),
        # A third of the utterances are outside S2 (no rater group).
        "rat": np.where(i % 3 == 0, "", np.where((i // 3) % 2 == 0, "F", "M")),
        "y_true": (np.random.default_rng(7).random(N) < 0.4).astype(int),
    }


def _run_list() -> list[tuple[str, str, int, float | None]]:
    runs = []
    for e in ("anger", "neutral"):
        for v in ("dnn", "fair_spk", "fair_rat", "proposed"):
            runs += [(v, e, s, None) for s in SEEDS]
        # Basic has three seeds on Neutral: an inconclusive C5.
        runs += [
            ("basic", e, s, None)
            for s in (SEEDS if e == "anger" else SEEDS[:3])
        ]
    runs += [("basic_anchored", "anger", s, None) for s in SEEDS]
    runs += [("fixed_alpha", "anger", s, a) for a in ALPHAS for s in SEEDS]
    return runs


def write_predictions(
    path: pathlib.Path,
    runs: list[tuple[str, str, int, float | None]],
    *,
    bias: dict[str, tuple[float, float]] = BIAS,
    constant: dict[tuple, int] | None = None,
    seed: int = 0,
) -> None:
    """predictions.csv of `runs`: P(ŷ=1) = 0.2 + spk shift·[M speaker] +
    rat shift·[M rater group]; the runs of `constant` predict one class."""
    constant = {CONSTANT: 0} if constant is None else constant
    u = _layout()
    rng = np.random.default_rng(seed)
    rows = []
    for key in runs:
        variant, emotion, s, alpha = key
        gs, gr = bias[variant]
        p = 0.2 + gs * (u["spk"] == "M") + gr * (u["rat"] == "M")
        y_pred = (rng.random(N) < np.clip(p, 0, 1)).astype(int)
        if key in constant:
            y_pred[:] = constant[key]
        for i in range(N):
            rows.append(
                [
                    variant,
                    emotion,
                    s,
                    "" if alpha is None else repr(alpha),
                    u["fold"][i],
                    u["id"][i],
                    u["y_true"][i],
                    f"{0.25 + 0.5 * y_pred[i]:.3f}",
                    y_pred[i],
                    u["spk"][i],
                    u["rat"][i],
                ]
            )
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)


ANGER_COUNTS = [0, 0, 0, 0, 5, 40, 10, 2, 1, 0, 0, 1, 3, 12, 45, 8, 0, 0, 0, 0]
NEUTRAL_COUNTS = [0] * 9 + [3, 200, 5] + [0] * 8
WIDE_COUNTS = [
    0,
    0,
    2,
    5,
    9,
    14,
    20,
    26,
    30,
    33,
    31,
    27,
    21,
    15,
    9,
    5,
    2,
    0,
    0,
    0,
]


def _trace(counts: list[int], sd: float) -> dict:
    return {
        "mean": 0.5,
        "sd": sd,
        "counts": counts,
        "bin_edges": np.linspace(0, 1, 21).tolist(),
        "num_batches": int(sum(counts)),
        "num_runs": 30,
    }


def make_workdir(root: pathlib.Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    write_predictions(root / "predictions.csv", _run_list())
    results = {
        "runs": results_lib.runs_from_predictions(root / "predictions.csv"),
        "alpha_trace": {
            "anger": _trace(ANGER_COUNTS, 0.2),
            "neutral": _trace(NEUTRAL_COUNTS, 0.01),
            # Wide but one mode: not the paper's two peaks.
            "sadness": _trace(WIDE_COUNTS, 0.15),
        },
    }
    (root / "results.json").write_text(json.dumps(results))
    return results


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("claims")
    make_workdir(root)
    claims.write_claims(root)
    return root


def read_rows(root: pathlib.Path) -> list[dict[str, str]]:
    with (root / "tables" / "claims.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == (
            "claim",
            "emotion",
            "measure",
            "a",
            "b",
            "n_seeds",
            "p_value",
            "verdict",
        )
        return list(reader)


# ------------------------------------------------- the plain recomputation


def _weighted_f1(y: np.ndarray, p: np.ndarray) -> float:
    out = 0.0
    for c in (0, 1):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0
        out += f1 * np.mean(y == c)
    return float(out)


def _dsp(y_pred: np.ndarray, group: np.ndarray) -> float:
    return float(abs(y_pred[group == "M"].mean() - y_pred[group == "F"].mean()))


def reference_runs(path: pathlib.Path) -> dict[tuple, dict]:
    """Per run: F1, ΔSP_spk, ΔSP_rat, product, constant — from the CSV."""
    cols: dict[tuple, dict[str, list]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            alpha = None if row["alpha"] == "" else float(row["alpha"])
            key = (row["variant"], row["emotion"], int(row["seed"]), alpha)
            c = cols.setdefault(key, {"yt": [], "yp": [], "s": [], "r": []})
            c["yt"].append(int(row["y_true"]))
            c["yp"].append(int(row["y_pred"]))
            c["s"].append(row["speaker_gender"])
            c["r"].append(row["rater_gender"])
    out = {}
    for key, c in cols.items():
        yt, yp = np.array(c["yt"]), np.array(c["yp"])
        spk, rat = np.array(c["s"]), np.array(c["r"])
        s2 = rat != ""
        m = {
            "f1": _weighted_f1(yt, yp),
            "dsp_spk": _dsp(yp, spk),
            "dsp_rat": _dsp(yp[s2], rat[s2]),
            "constant": len(set(yp.tolist())) == 1,
        }
        m["product"] = m["dsp_spk"] * m["dsp_rat"]
        out[key] = m
    return out


PAIRED = {  # claim: (first, second, measure, claimed direction, α)
    "C1": ("fair_spk", "dnn", "dsp_spk", "less", None),
    "C2": ("fair_rat", "dnn", "dsp_rat", "less", None),
    "C3": ("fair_spk", "fair_rat", "dsp_rat", "greater", None),
    "C4": ("fair_rat", "fair_spk", "dsp_spk", "greater", None),
    "C5": ("proposed", "basic", "product", "less", None),
    "C9": ("proposed", "basic_anchored", "product", "less", None),
    "C10": ("proposed", "fixed_alpha", "product", "less", 0.5),
}


def _pairs(ref, first, second, emotion, measure, alpha=None):
    seeds = sorted(
        s
        for s in SEEDS
        if (first, emotion, s, None) in ref
        and (second, emotion, s, alpha) in ref
        and not ref[first, emotion, s, None]["constant"]
        and not ref[second, emotion, s, alpha]["constant"]
    )
    a = np.array([ref[first, emotion, s, None][measure] for s in seeds])
    b = np.array([ref[second, emotion, s, alpha][measure] for s in seeds])
    return a, b


def _sign_p(a, b, direction):
    d = a - b if direction == "less" else b - a  # < 0: claimed direction
    d = d[d != 0]
    k = int(np.sum(d < 0))
    return (
        stats.binomtest(k, d.size, 0.5, alternative="greater").pvalue,
        stats.binomtest(d.size - k, d.size, 0.5, alternative="greater").pvalue,
    )


def _verdict(p, p_opp, n):
    if p < 0.05:
        return "reproduces"
    if p_opp < 0.05:
        return "contradicted"
    return f"inconclusive ({n} seeds)"


def expected_row(ref, claim, emotion, measure) -> dict:
    if claim in PAIRED:
        first, second, m, direction, alpha = PAIRED[claim]
        assert m == measure
        a, b = _pairs(ref, first, second, emotion, m, alpha)
        p, p_opp = _sign_p(a, b, direction)
        return {
            "a": a.mean(),
            "b": b.mean(),
            "n": a.size,
            "p": p,
            "verdict": _verdict(p, p_opp, a.size),
        }
    if claim == "C6":
        a, b = _pairs(ref, "proposed", "basic", emotion, measure)
        idx = np.random.default_rng(0).integers(0, a.size, (10_000, a.size))
        sa, sb = a[idx].std(axis=1, ddof=1), b[idx].std(axis=1, ddof=1)
        # One seed drawn n times: 0/0, counted as a ratio of 1.
        one_seed = np.array([len(set(row)) == 1 for row in idx.tolist()])
        ratio = np.where(one_seed, 1.0, sa / np.where(one_seed, 1.0, sb))
        p, p_opp = np.mean(ratio >= 1), np.mean(ratio <= 1)
        return {
            "a": np.std(a, ddof=1),
            "b": np.std(b, ddof=1),
            "n": a.size,
            "p": p,
            "verdict": _verdict(p, p_opp, a.size),
        }
    if claim == "C7":
        per_alpha = [
            _pairs(ref, "proposed", "fixed_alpha", emotion, measure, al)
            for al in ALPHAS
        ]
        tests = [_sign_p(a, b, "less") for a, b in per_alpha]
        best = int(np.argmin([b.mean() for _, b in per_alpha]))
        p = max(t[0] for t in tests)
        p_opp = min(1.0, len(ALPHAS) * min(t[1] for t in tests))
        n = min(a.size for a, _ in per_alpha)
        return {
            "a": per_alpha[best][0].mean(),
            "b": per_alpha[best][1].mean(),
            "n": n,
            "p": p,
            "verdict": _verdict(p, p_opp, n),
        }
    raise AssertionError(claim)


# ------------------------------------------------------------------ tests


def test_rows_equal_a_plain_recomputation(workdir):
    ref = reference_runs(workdir / "predictions.csv")
    rows = read_rows(workdir)
    seen = set()
    for row in rows:
        key = (row["claim"], row["emotion"], row["measure"])
        seen.add(key)
        if row["claim"] == "C8":
            continue
        want = expected_row(ref, *key)
        assert float(row["a"]) == pytest.approx(want["a"], rel=1e-12), key
        assert float(row["b"]) == pytest.approx(want["b"], rel=1e-12), key
        assert int(row["n_seeds"]) == want["n"], key
        assert float(row["p_value"]) == pytest.approx(want["p"], rel=1e-12)
        assert row["verdict"] == want["verdict"], key
    expected = {
        (c, e, PAIRED[c][2])
        for c in ("C1", "C2", "C3", "C4", "C5")
        for e in ("anger", "neutral")
    }
    expected |= {
        ("C6", e, m) for e in ("anger", "neutral") for m in ("f1", "product")
    }
    expected |= {
        ("C7", "anger", "product"),
        ("C9", "anger", "product"),
        ("C10", "anger", "product"),
    }
    expected |= {("C8", e, "alpha_sd") for e in ("neutral", "anger", "sadness")}
    assert seen == expected
    # claims.csv holds evaluate()'s rows, unrounded, in its order.
    got = claims.evaluate(
        json.loads((workdir / "results.json").read_text()),
        claims.constant_runs(workdir / "predictions.csv"),
    )
    assert [r.csv_row()[:3] for r in got] == [
        [r["claim"], r["emotion"], r["measure"]] for r in rows
    ]
    for r, row in zip(got, rows, strict=True):
        assert row["a"] == ("" if r.a is None else repr(r.a))


def test_constructed_verdicts(workdir):
    rows = {
        (r["claim"], r["emotion"], r["measure"]): r for r in read_rows(workdir)
    }
    # Clear reproduces: every seed in the claimed direction.
    for key in (
        ("C1", "neutral", "dsp_spk"),
        ("C2", "neutral", "dsp_rat"),
        ("C4", "anger", "dsp_spk"),
        ("C5", "anger", "product"),
        ("C7", "anger", "product"),
        ("C9", "anger", "product"),
        ("C10", "anger", "product"),
    ):
        assert rows[key]["verdict"] == "reproduces", key
        assert float(rows[key]["p_value"]) == pytest.approx(0.5**6)
    # Clear contradicted: Fair_spk's ΔSP_rat is below Fair_rat's.
    for e in ("anger", "neutral"):
        row = rows["C3", e, "dsp_rat"]
        assert row["verdict"] == "contradicted"
        assert float(row["p_value"]) == 1.0
    # Basic has three Neutral seeds: no sign test can decide.
    row = rows["C5", "neutral", "product"]
    assert (row["n_seeds"], row["verdict"]) == ("3", "inconclusive (3 seeds)")
    assert float(row["a"]) < float(row["b"])
    # C8: bimodal and wide reproduces; narrow, or wide with one mode, not.
    assert rows["C8", "anger", "alpha_sd"]["verdict"] == "reproduces"
    for e in ("neutral", "sadness"):
        assert rows["C8", e, "alpha_sd"]["verdict"] == "contradicted"
    for e in ("anger", "neutral", "sadness"):
        assert rows["C8", e, "alpha_sd"]["p_value"] == ""
        assert float(rows["C8", e, "alpha_sd"]["b"]) == 0.05
    assert rows["C8", "anger", "alpha_sd"]["n_seeds"] == "6"
    assert rows["C8", "sadness", "alpha_sd"]["n_seeds"] == "0"


def test_constant_runs_are_excluded(workdir):
    assert claims.constant_runs(workdir / "predictions.csv") == {CONSTANT}
    assert claims.constant_predictions(workdir / "predictions.csv") == {
        CONSTANT: "0"
    }
    rows = {(r["claim"], r["emotion"]): r for r in read_rows(workdir)}
    # DNN anger seed 5 predicts 0 everywhere: ΔSP = 0, dropped from C1/C2.
    for claim in ("C1", "C2"):
        row = rows[claim, "anger"]
        assert row["n_seeds"] == "5"
        # Five untied seeds, all in the claimed direction: p = 1/32.
        assert float(row["p_value"]) == pytest.approx(0.5**5)
        assert row["verdict"] == "reproduces"
    assert rows["C4", "anger"]["n_seeds"] == "6"
    md = (workdir / "claims.md").read_text()
    assert "| C1 | Anger | `dsp_spk` |" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| C1 | Anger"))
    assert line.endswith("| 1: DNN seed 5 |")
    assert "- variant=dnn emotion=anger seed=5: always 0" in md
    assert "at least\n  5 seeds" in md or "at least 5 seeds" in md
    assert "sign test" in md
    assert not list(workdir.glob("*.tmp")) and not list(workdir.glob(".*"))


def test_sign_test_and_modes():
    # Ties are dropped: 4 of 4 untied seeds below → 1/16.
    p_less, p_greater = claims.sign_test([1, 1, 2, 3, 4, 5], [1, 1, 3, 4, 5, 6])
    assert p_less == pytest.approx(1 / 16) and p_greater == 1.0
    assert claims.sign_test([1, 2], [1, 2]) == (1.0, 1.0)
    assert claims.histogram_modes(ANGER_COUNTS) == 2
    assert claims.histogram_modes(NEUTRAL_COUNTS) == 1
    assert claims.histogram_modes(WIDE_COUNTS) == 1
    assert claims.histogram_modes([0] * 20) == 0
    # Peaks at both ends count (padding), and a flat top counts once.
    assert claims.histogram_modes([9, 1, 0, 1, 9]) == 2
    assert claims.histogram_modes([0, 5, 5, 5, 0]) == 1
    # A wiggle below a tenth of the tallest bin is not a mode.
    assert claims.histogram_modes([0, 100, 50, 3, 1, 4, 0]) == 1
    assert claims.verdict(0.01, 0.9, 6) == "reproduces"
    assert claims.verdict(0.9, 0.01, 6) == "contradicted"
    assert claims.verdict(0.2, 0.9, 1) == "inconclusive (1 seed)"


def test_module_imports_no_jax():
    """claims.py imports NumPy, SciPy, the standard library and JAX-free
    package modules only."""
    tree = ast.parse(pathlib.Path(claims.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    allowed = {
        "__future__",
        "csv",
        "dataclasses",
        "json",
        "math",
        "os",
        "pathlib",
        "collections.abc",
        "typing",
        "numpy",
        "scipy",
        "fairser_jax",
        "fairser_jax.constants",
        "fairser_jax.report",
        "fairser_jax.results",
    }
    assert names <= allowed, names - allowed
    # `from fairser_jax.report import numbers` is the only report import.
    froms = [
        (n.module, [a.name for a in n.names])
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "fairser_jax.report"
    ]
    assert froms == [("fairser_jax.report", ["numbers"])]


def test_custom_classes_one_sided_workdir(tmp_path):
    """A corpus with its own class names and only DNN + Fair_spk: C1 only,
    the other claims listed as not evaluated, a Pareto figure, a report."""
    runs = [(v, "calm", s, None) for v in ("dnn", "fair_spk") for s in range(4)]
    write_predictions(
        tmp_path / "predictions.csv",
        runs,
        constant={("fair_spk", "calm", 3, None): 1},
        seed=3,
    )
    u = _layout()
    s2 = u["rat"] != ""
    calm = int(u["y_true"].sum())
    results = {
        "study_sets": {
            "S1": {"n": N, "per_class": {"calm": calm, "tense": N - calm}},
            "S2": {
                "n": int(s2.sum()),
                "per_class": {
                    "calm": int(u["y_true"][s2].sum()),
                    "tense": int(s2.sum() - u["y_true"][s2].sum()),
                },
            },
        },
        "runs": results_lib.runs_from_predictions(tmp_path / "predictions.csv"),
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    md_path = document.write_report(tmp_path, tsne_sample_size=50)
    rows = read_rows(tmp_path)
    assert [(r["claim"], r["emotion"]) for r in rows] == [("C1", "calm")]
    assert rows[0]["n_seeds"] == "3"
    assert rows[0]["verdict"] == "inconclusive (3 seeds)"
    text = (tmp_path / "claims.md").read_text()
    for c in ("C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"):
        assert f"- **{c}**: " in text.split("## Not evaluated", 1)[1], c
    assert "no Fair_rat (`fair_rat`) runs" in text
    assert "- variant=fair_spk emotion=calm seed=3: always 1" in text
    png = tmp_path / "figures" / "pareto_calm.png"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert png.with_suffix(".pdf").is_file()
    report = md_path.read_text()
    assert "## Claims" in report and "[claims.md](claims.md)" in report
    assert "[CSV](tables/claims.csv)" in report
    assert "0 reproduce, 0 contradicted, 1 inconclusive" in report
    assert "](figures/pareto_calm.png)" in report
    assert "Calm detector" in report
    # Table 2 names its constant-predictor cell.
    assert "Fair_spk · Calm: seed 3 (always 1)" in report


def test_workdir_without_runs_writes_a_page(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"runs": []}))
    md, path = claims.write_claims(tmp_path)
    assert read_rows(tmp_path) == []
    text = md.read_text()
    assert "No claim could be evaluated" in text
    listed, why = text.split("## The claims", 1)[1].split("## Not evaluated")
    listed = listed.split("## How each row", 1)[0]
    for c in claims.CLAIMS:
        assert f"- **{c.id}** (" in listed and f"- **{c.id}**: " in why
    assert path == tmp_path / "tables" / "claims.csv"


def test_pareto_figure_marks_constant_runs(workdir, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(
        figures, "_save", lambda fig, path: drawn.append((fig, path)) or path
    )
    results = json.loads((workdir / "results.json").read_text())
    path = figures.pareto_figure(
        results, tmp_path, "anger", constant={CONSTANT}
    )
    assert path == tmp_path / "pareto_anger.png"
    fig = drawn[0][0]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("constant predictor" in t and "DNN s5" in t for t in labels)
    assert any(t.startswith("Fixed α") for t in labels)
    assert "Anger" in fig.axes[0].get_title()
    assert figures.pareto_figure(results, tmp_path, "calm") is None
    assert figures.pareto_front([(1, 1), (2, 3), (0.5, 0.5), (2, 2)]) == [
        2,
        0,
        1,
    ]

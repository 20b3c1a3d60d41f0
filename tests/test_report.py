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
from fairlearn.metrics import demographic_parity_difference
from PIL import Image
from sklearn.metrics import f1_score

from fairser_jax.constants import EMOTIONS
from fairser_jax.report import figures, recompute, tables

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
    """F1 / ΔSP by sklearn and fairlearn, independent of fairser_jax."""
    s2 = rat != ""
    return {
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


def make_workdir(
    root: pathlib.Path, *, two_sided: bool = True, seed: int = 0
) -> dict:
    """Writes config.json, results.json, predictions.csv, embeddings/."""
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
    return results


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("full")
    make_workdir(root)
    tables.write_report(root, tsne_sample_size=120)
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
    with pytest.raises(ValueError, match="header must be exactly"):
        recompute.runs_from_predictions(path)


# -------------------------------------------------------------- tables


def test_table2_numbers_and_markers(workdir):
    results = json.loads((workdir / "results.json").read_text())
    md = (workdir / "report.md").read_text()
    ours, paper = section_tables(md, "Table 2")
    rows = {r["Model"]: r for r in as_dicts(ours)}
    assert list(rows) == ["DNN", "Fair_spk", "Fair_rat"]
    assert list(ours[0][1:4]) == [
        "Neutral F1 (%)",
        "Neutral ΔSP_spk",
        "Neutral ΔSP_rat",
    ]
    assert len(ours[0]) == 1 + 3 * len(EMOS)  # absent emotions omitted
    for variant, name in (
        ("dnn", "DNN"),
        ("fair_spk", "Fair_spk"),
        ("fair_rat", "Fair_rat"),
    ):
        for emotion in EMOS:
            for metric, head, tol in (
                ("f1", "F1 (%)", 0.0051),
                ("dsp_spk", "ΔSP_spk", 0.00051),
                ("dsp_rat", "ΔSP_rat", 0.00051),
            ):
                cell = rows[name][f"{emotion.capitalize()} {head}"]
                mean, sd = parse_pm(cell)
                ref_mean, ref_sd = _ref_cell(results, variant, emotion, metric)
                assert mean == pytest.approx(ref_mean, abs=tol), cell
                assert sd == pytest.approx(ref_sd, abs=tol), cell
                intra = (variant, metric) in {
                    ("fair_spk", "dsp_spk"),
                    ("fair_rat", "dsp_rat"),
                }
                inter = (variant, metric) in {
                    ("fair_spk", "dsp_rat"),
                    ("fair_rat", "dsp_spk"),
                }
                assert cell.startswith("**") == intra, cell
                assert cell.endswith("*†") == inter, cell
    assert "**Bold**: intra-fairness" in md
    assert "Seeds per model: DNN: 2 (0–1)" in md
    prow = {r["Model"]: r for r in as_dicts(paper)}
    assert prow["Fair_spk (paper)"]["Anger ΔSP_spk"] == "**0.234**"
    assert prow["Fair_rat (paper)"]["Neutral ΔSP_spk"] == "*0.403*†"
    assert prow["DNN (paper)"]["Neutral F1 (%)"] == "77.73"


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
        "fig2_tsne_anger_seed0.png",
        "parity_bars.png",
        "fig3a_fixed_alpha_anger.png",
        "fig3b_alpha_hist_anger.png",
    ):
        assert f"](figures/{name})" in md


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
        "fig2_tsne_anger_seed0.png",
        "fig3a_fixed_alpha_anger.png",
        "fig3b_alpha_hist_anger.png",
        "parity_bars.png",
    ]
    sizes = {p.name: _assert_png(p) for p in found}
    w, h = sizes["fig2_tsne_anger_seed0.png"]
    assert h > 0.8 * w  # 2 x 2 panels


def test_one_sided_workdir_omits_absent_parts(tmp_path):
    make_workdir(tmp_path, two_sided=False, seed=1)
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
    # fair_rat lacks seed 0: the seed where both models exist is used.
    (tsne,) = paths["tsne"]
    assert tsne.name == "fig2_tsne_neutral_seed1.png"
    _assert_png(tsne)
    _assert_png(paths["parity_bars"][0])
    md = tables.write_report(tmp_path, figures=False).read_text()
    assert "## Table 2" in md
    assert "Table 3" not in md and "Fixed α" not in md
    assert "fig3" not in md and "fig2_tsne_neutral_seed1.png" in md


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


def test_missing_results_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m fairser_jax.train"):
        tables.write_report(tmp_path)
    proc = _cli(f"--workdir={tmp_path}")
    assert proc.returncode == 1
    assert "no results.json" in proc.stderr
    assert "python -m fairser_jax.train" in proc.stderr
    assert "Traceback" not in proc.stderr

"""Tests that the figures show what their titles say (Figs. 2, 3a, 3b).

- Fig. 2 plots the held-out utterances of ONE fold model per variant (an
  embeddings file pools five fold models, whose spaces are not aligned),
  whether the file records each row's fold or predictions.csv does.
- Fig. 3a draws every seed, the mean ± SD over seeds, and an interval of
  Proposed's mean only with enough seeds (checked against scipy's t).
- Fig. 3b bins the raw α over its own range (checked against
  ``np.histogram``); titles fit in the figure and name the emotion.

References are plain NumPy and scipy, never the code under test.
"""

from __future__ import annotations

import csv
import logging
import pathlib

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, StepPatch
from scipy import stats

from fairser_jax.report import figures

FOLDS = 5


def _capture(monkeypatch) -> list[tuple[Figure, pathlib.Path]]:
    """Replaces `figures._save`: records (figure, path), writes nothing."""
    drawn: list[tuple[Figure, pathlib.Path]] = []

    def save(fig, path):
        drawn.append((fig, path))
        return path

    monkeypatch.setattr(figures, "_save", save)
    return drawn


def _renderer(fig: Figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _assert_titles_fit(fig: Figure) -> None:
    """Every title and the suptitle lie inside the figure (none clipped)."""
    renderer = _renderer(fig)
    box = fig.bbox
    texts = [ax.title for ax in fig.axes if ax.get_title()]
    if fig.get_suptitle():
        texts.append(fig._suptitle)
    assert texts
    for text in texts:
        ext = text.get_window_extent(renderer)
        assert ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5, (
            text.get_text(),
            ext,
            box,
        )
        assert ext.y0 >= box.y0 - 0.5 and ext.y1 <= box.y1 + 0.5


# ----------------------------------------------------------------- Fig. 2


def _fold_sizes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """ids [N] and fold [N] with unequal folds (fold 3 the largest)."""
    sizes = np.array([18, 22, 20, 31, 25])
    fold = np.repeat(np.arange(FOLDS), sizes)
    ids = np.array(
        [f"Ses{f + 1:02d}M_impro01_F{i:03d}" for i, f in enumerate(fold)]
    )
    perm = rng.permutation(ids.size)
    return ids[perm], fold[perm]


def _reference_fold(ids: dict, folds: dict) -> tuple[int, set[str]]:
    """The fold holding out the most utterances of every variant, and
    those utterances (plain Python sets)."""
    best = None
    for f in range(FOLDS):
        common = set.intersection(
            *(
                {u for u, g in zip(ids[v], folds[v], strict=True) if g == f}
                for v in ids
            )
        )
        if best is None or len(common) > len(best[1]):
            best = (f, common)
    return best


def test_select_tsne_rows_keeps_one_fold_model(rng):
    ids, fold = _fold_sizes(rng)
    # Fair_rat lists the utterances in another order and lacks a few of
    # fold 3, so its largest shared fold is 4.
    drop = np.flatnonzero(fold == 3)[:8]
    keep = np.setdiff1d(np.arange(ids.size), drop)
    perm = rng.permutation(keep)
    by_variant_ids = {"fair_spk": ids, "fair_rat": ids[perm]}
    by_variant_folds = {"fair_spk": fold, "fair_rat": fold[perm]}
    ref_fold, ref_common = _reference_fold(by_variant_ids, by_variant_folds)
    assert ref_fold == 4 and len(ref_common) == 25

    pick = figures.select_tsne_rows(
        by_variant_ids,
        by_variant_folds,
        sample_size=1000,
        rng=np.random.default_rng(0),
    )
    assert pick.fold == ref_fold
    assert pick.held_out == len(ref_common)
    assert set(pick.utterance_id.tolist()) == ref_common
    for v in by_variant_ids:
        rows = pick.rows[v]
        # Every plotted row comes from the one chosen fold model...
        assert set(by_variant_folds[v][rows].tolist()) == {ref_fold}
        # ... and row i of every variant is the same utterance.
        np.testing.assert_array_equal(
            by_variant_ids[v][rows], pick.utterance_id
        )

    # A sample: a subset of the fold, the same for both variants.
    small = figures.select_tsne_rows(
        by_variant_ids,
        by_variant_folds,
        sample_size=7,
        rng=np.random.default_rng(1),
        fold=2,
    )
    assert small.fold == 2 and small.utterance_id.size == 7
    assert small.held_out == int(np.sum(fold == 2))
    for v in by_variant_ids:
        assert set(by_variant_folds[v][small.rows[v]].tolist()) == {2}
    # Unknown folds (-1) are never picked; an absent fold gives None.
    unknown = {v: np.full(f.size, -1) for v, f in by_variant_folds.items()}
    assert (
        figures.select_tsne_rows(
            by_variant_ids,
            unknown,
            sample_size=10,
            rng=np.random.default_rng(0),
        )
        is None
    )
    assert (
        figures.select_tsne_rows(
            by_variant_ids,
            by_variant_folds,
            sample_size=10,
            rng=np.random.default_rng(0),
            fold=9,
        )
        is None
    )


def _embedding_workdir(
    root: pathlib.Path, rng: np.random.Generator, *, with_fold: bool
) -> dict[str, np.ndarray]:
    """Fair_spk / Fair_rat anger seed-0 embeddings over five folds, each
    fold in its own region of the space (unaligned fold models), and a
    predictions.csv with each utterance's fold."""
    ids, fold = _fold_sizes(rng)
    spk = np.where(rng.random(ids.size) < 0.5, "M", "F")
    rat = np.where(rng.random(ids.size) < 0.7, spk, "")
    (root / "embeddings").mkdir(parents=True)
    rows = []
    for v in ("fair_spk", "fair_rat"):
        perm = rng.permutation(ids.size)
        emb = rng.normal(0, 1, (ids.size, 8)) + 40.0 * fold[:, None]
        arrays = dict(
            utterance_id=ids[perm],
            embedding=emb[perm].astype(np.float32),
            speaker_group=spk[perm],
            rater_group=rat[perm],
        )
        if with_fold:
            arrays["fold"] = fold[perm]
        np.savez(root / "embeddings" / f"{v}_anger_seed0.npz", **arrays)
        for i in perm:
            rows.append(
                [v, "anger", 0, "", fold[i], ids[i], 0, 0.1, 0, spk[i], rat[i]]
            )
    with (root / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            "variant,emotion,seed,alpha,fold,utterance_id,y_true,y_score,"
            "y_pred,speaker_gender,rater_gender".split(",")
        )
        w.writerows(rows)
    return {"ids": ids, "fold": fold}


def _points_per_panel(fig: Figure) -> list[int]:
    return [
        sum(
            c.get_offsets().shape[0]
            for c in ax.collections
            if isinstance(c, PathCollection)
        )
        for ax in fig.axes
    ]


@pytest.mark.parametrize("with_fold", [True, False])
def test_tsne_figure_plots_one_fold_model(
    tmp_path, monkeypatch, rng, with_fold
):
    """Each map holds exactly the held-out utterances of the largest fold
    (31 of 116): pooling the fold models would plot all 116. Files without
    'fold' (older releases) get it from predictions.csv."""
    truth = _embedding_workdir(tmp_path, rng, with_fold=with_fold)
    largest = int(np.argmax(np.bincount(truth["fold"])))
    held_out = int(np.sum(truth["fold"] == largest))
    drawn = _capture(monkeypatch)
    path = figures.tsne_figure(tmp_path, sample_size=1500)
    assert path.name == f"fig2_tsne_anger_seed0_fold{largest}.png"
    ((fig, _),) = drawn
    assert _points_per_panel(fig) == [held_out] * 4
    title = fig.get_suptitle()
    assert f"fold {largest} model" in title
    assert f"Ses{largest + 1:02d}" in title
    assert f"all {held_out} utterances" in title
    assert "seed 0" in title and "Anger" in title
    for ax in fig.axes:
        assert f"(fold {largest} model)" in ax.get_title()
    _assert_titles_fit(fig)

    # A fold asked for, sampled: a sample of that fold's utterances only.
    drawn.clear()
    path = figures.tsne_figure(tmp_path, sample_size=10, fold=0)
    assert path.name == "fig2_tsne_anger_seed0_fold0.png"
    ((fig, _),) = drawn
    assert _points_per_panel(fig) == [10] * 4
    n0 = int(np.sum(truth["fold"] == 0))
    assert f"a random 10 of {n0} utterances" in fig.get_suptitle()


def test_tsne_figure_samples_rows_of_the_chosen_fold(
    tmp_path, monkeypatch, rng
):
    """The points t-SNE embeds are rows of the chosen fold only, read back
    from the embeddings file (by value) independently of the selection."""
    _embedding_workdir(tmp_path, rng, with_fold=True)
    seen = []

    class Recorder:
        def __init__(self, **kwargs):
            pass

        def fit_transform(self, x):
            seen.append(np.asarray(x))
            return x[:, :2]

    import sklearn.manifold

    monkeypatch.setattr(sklearn.manifold, "TSNE", Recorder)
    _capture(monkeypatch)
    figures.tsne_figure(tmp_path, sample_size=12)
    assert len(seen) == 2
    for v, x in zip(("fair_spk", "fair_rat"), seen, strict=True):
        with np.load(tmp_path / "embeddings" / f"{v}_anger_seed0.npz") as f:
            emb, fold = f["embedding"].astype(np.float64), f["fold"]
        # Find each plotted vector in the file: all of one fold.
        match = [int(np.flatnonzero((emb == row).all(1))[0]) for row in x]
        assert len(set(fold[match].tolist())) == 1, fold[match]


def test_tsne_figure_without_any_fold_is_skipped(tmp_path, rng, caplog):
    _embedding_workdir(tmp_path, rng, with_fold=False)
    (tmp_path / "predictions.csv").unlink()
    with caplog.at_level(logging.WARNING):
        assert figures.tsne_figure(tmp_path) is None
    text = caplog.text
    assert "has no 'fold' array" in text and "fairser_jax.train" in text


def test_write_embeddings_records_fold(tmp_path, rng):
    from fairser_jax.train import dataset, outputs

    n = 12
    info = dataset.DatasetInfo(
        ids=np.array([f"u{i:02d}" for i in range(n)]),
        speaker_group=np.array(["M", "F"] * 6),
        rater_group=np.array(["F", "", "M"] * 4),
        fold=np.arange(n) % 3,
    )
    rows = rng.permutation(n)[:9]
    oof = outputs.OutOfFold(
        key=("fair_spk", "anger", 2, None),
        fold=info.fold[rows],
        rows=rows,
        y_true=np.zeros(9, np.int64),
        y_score=np.full(9, 0.2),
        y_pred=np.zeros(9, np.int64),
        embedding=rng.normal(size=(9, 4)).astype(np.float32),
    )
    outputs.write_embeddings(tmp_path, oof, info)
    got = figures.load_embeddings(
        tmp_path / "embeddings" / "fair_spk_anger_seed2.npz"
    )
    np.testing.assert_array_equal(got["fold"], info.fold[rows])
    np.testing.assert_array_equal(got["utterance_id"], info.ids[rows])
    assert got["fold"].dtype == np.int64

    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        utterance_id=info.ids,
        embedding=np.zeros((n, 2)),
        speaker_group=info.speaker_group,
        rater_group=info.rater_group,
        fold=np.zeros(n - 1, np.int64),
    )
    with pytest.raises(ValueError, match=r"bad\.npz: 'fold' must be"):
        figures.load_embeddings(bad)


# ---------------------------------------------------------------- Fig. 3b


def _key(emotion: str, seed: int, fold: int, term: str = "alpha") -> str:
    return f"proposed/{emotion}/seed{seed}/fold{fold}/{term}"


def _write_trace(root: pathlib.Path, traces: dict[str, np.ndarray]) -> None:
    np.savez(
        root / "alpha_trace.npz",
        **{k: v.astype(np.float32) for k, v in traces.items()},
    )


def _stairs(fig: Figure) -> tuple[np.ndarray, np.ndarray]:
    (patch,) = [p for p in fig.axes[0].patches if isinstance(p, StepPatch)]
    data = patch.get_data()
    return np.asarray(data.values), np.asarray(data.edges)


def test_alpha_histogram_bins_follow_the_spread(tmp_path, monkeypatch, rng):
    """α with SD 0.01: the 0.05-wide stored bins show two bars; the raw
    values get tens of bins over [min, max], counted as np.histogram."""
    traces = {
        _key("frustration", s, f): np.clip(rng.normal(0.5, 0.01, 60), 0, 1)
        for s in range(2)
        for f in range(FOLDS)
    }
    traces[_key("anger", 0, 0)] = rng.uniform(0.1, 0.9, 50)
    _write_trace(tmp_path, traces)
    loaded = figures.load_alpha_trace(tmp_path)
    values = np.concatenate(
        [loaded[k] for k in sorted(loaded) if "/frustration/" in k]
    )
    assert values.size == 600
    coarse = np.histogram(values, np.linspace(0, 1, 21))[0]
    assert np.count_nonzero(coarse) <= 2

    drawn = _capture(monkeypatch)
    path = figures.alpha_histogram_figure(
        {}, tmp_path, emotion="frustration", trace=loaded
    )
    assert path.name == "fig3b_alpha_hist_frustration.png"
    ((fig, _),) = drawn
    counts, edges = _stairs(fig)
    assert edges[0] == pytest.approx(values.min())
    assert edges[-1] == pytest.approx(values.max())
    assert figures.ALPHA_MIN_BINS <= counts.size <= figures.ALPHA_MAX_BINS
    np.testing.assert_array_equal(counts, np.histogram(values, edges)[0])
    assert np.count_nonzero(counts) >= 8
    assert counts.sum() == values.size
    # The zoomed axis shows the values' range, the strip below all of
    # [0, 1], with the zoom window shaded.
    main, context = fig.axes
    assert (
        main.get_xlim()[0] < values.min() < values.max() < (main.get_xlim()[1])
    )
    assert main.get_xlim()[1] - main.get_xlim()[0] < 0.2
    assert context.get_xlim() == (0.0, 1.0)
    (span,) = [p for p in context.patches if isinstance(p, Rectangle)]
    assert (span.get_x(), span.get_x() + span.get_width()) == pytest.approx(
        (values.min(), values.max())
    )
    title = main.get_title()
    assert "Frustration" in title
    assert f"{values.size} batches of 10 runs" in title
    assert f"mean {values.mean():.3f}" in title
    assert f"{values.min():.3f}–{values.max():.3f}" in title
    _assert_titles_fit(fig)

    # A spread over most of [0, 1]: one axis, [0, 1].
    drawn.clear()
    figures.alpha_histogram_figure({}, tmp_path, emotion="anger", trace=loaded)
    ((fig, _),) = drawn
    assert len(fig.axes) == 1 and fig.axes[0].get_xlim() == (0.0, 1.0)
    counts, edges = _stairs(fig)
    np.testing.assert_array_equal(
        counts, np.histogram(loaded[_key("anger", 0, 0)], edges)[0]
    )


def test_alpha_histogram_falls_back_to_stored_counts(tmp_path, monkeypatch):
    edges = np.linspace(0, 1, 21)
    counts = np.zeros(20, int)
    counts[[9, 10]] = [29, 91]
    results = {
        "alpha_trace": {
            "happiness": {
                "bin_edges": edges.tolist(),
                "counts": counts.tolist(),
                "mean": 0.5079,
                "sd": 0.01321,
                "num_batches": 120,
                "num_runs": 10,
            }
        }
    }
    drawn = _capture(monkeypatch)
    figures.alpha_histogram_figure(results, tmp_path, emotion="happiness")
    ((fig, _),) = drawn
    got_counts, got_edges = _stairs(fig)
    np.testing.assert_array_equal(got_counts, counts)
    np.testing.assert_allclose(got_edges, edges)
    title = fig.axes[0].get_title()
    assert "Happiness" in title and "SD 0.013" in title
    assert "alpha_trace.npz absent" in title
    _assert_titles_fit(fig)
    assert figures.alpha_histogram_figure({}, tmp_path, emotion="x") is None


def test_alpha_trace_outside_unit_interval_is_refused(tmp_path):
    _write_trace(tmp_path, {_key("anger", 0, 0): np.array([0.2, 1.5])})
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        figures.load_alpha_trace(tmp_path)
    assert figures.load_alpha_trace(tmp_path / "nowhere") == {}


def test_make_figures_bins_the_workdir_trace(tmp_path, monkeypatch, rng):
    """make_figures reads alpha_trace.npz and names each emotion."""
    traces = {
        _key(e, 0, f): rng.normal(m, 0.01, 30).clip(0, 1)
        for e, m in (("anger", 0.3), ("sadness", 0.7))
        for f in range(FOLDS)
    }
    _write_trace(tmp_path, traces)
    drawn = _capture(monkeypatch)
    paths = figures.make_figures(tmp_path, {"runs": []})
    assert [p.name for p in paths["alpha_histogram"]] == [
        "fig3b_alpha_hist_anger.png",
        "fig3b_alpha_hist_sadness.png",
    ]
    figs = {p.name: f for f, p in drawn}
    for e in ("anger", "sadness"):
        fig = figs[f"fig3b_alpha_hist_{e}.png"]
        values = np.concatenate(
            [
                traces[k].astype(np.float32).astype(np.float64)
                for k in sorted(traces)
                if f"/{e}/" in k
            ]
        )
        counts, edges = _stairs(fig)
        assert edges[0] == pytest.approx(values.min())
        np.testing.assert_array_equal(counts, np.histogram(values, edges)[0])
        assert e.capitalize() in fig.axes[0].get_title()


def test_trace_of_an_earlier_release_is_read_as_proposed_alpha(tmp_path, rng):
    """Keys `<emotion>/seed<k>/fold<f>` (α of Proposed only) read in
    today's form; a key of another form is refused, naming it."""
    old = {"anger/seed0/fold1": rng.uniform(0, 1, 7)}
    _write_trace(tmp_path, old)
    loaded = figures.load_alpha_trace(tmp_path)
    assert list(loaded) == [_key("anger", 0, 1)]
    np.testing.assert_allclose(
        loaded[_key("anger", 0, 1)], old["anger/seed0/fold1"].astype(np.float32)
    )
    _write_trace(tmp_path, {"proposed/anger/seed0/fold1/beta": np.ones(3)})
    with pytest.raises(ValueError, match="beta"):
        figures.load_alpha_trace(tmp_path)


def test_trace_file_keeps_other_variants_and_summarises_d(tmp_path, rng):
    """write_alpha_trace replaces one variant's entries and keeps the
    others'; the summary gives D's mean, SD, CV and corr(α, D) as NumPy
    computes them over every pooled batch."""
    from fairser_jax.train import outputs
    from fairser_jax.train.runs import RunSpec

    path = tmp_path / "alpha_trace.npz"
    runs = [RunSpec("proposed", "anger", f, 0, None) for f in (0, 1)]
    d = rng.uniform(0.5, 1.5, (2, 40))
    a = d / (d + 1.0)
    outputs.write_alpha_trace(path, runs, {"alpha": a, "distance": d})
    other = [RunSpec("other_two_sided", "anger", 0, 0, None)]
    outputs.write_alpha_trace(path, other, {"alpha": a[:1]})
    outputs.write_alpha_trace(path, runs, {"alpha": a, "distance": d})
    loaded = figures.load_alpha_trace(tmp_path)
    assert sorted(loaded) == sorted(
        [_key("anger", 0, f, t) for f in (0, 1) for t in ("alpha", "distance")]
        + ["other_two_sided/anger/seed0/fold0/alpha"]
    )
    summary = outputs.summarize_alpha_trace(path)["anger"]
    pooled_a = a.astype(np.float32).astype(np.float64).ravel()
    pooled_d = d.astype(np.float32).astype(np.float64).ravel()
    assert summary["num_runs"] == 2 and summary["num_batches"] == 80
    assert summary["distance"]["mean"] == pytest.approx(pooled_d.mean())
    assert summary["distance"]["sd"] == pytest.approx(pooled_d.std())
    assert summary["distance"]["cv"] == pytest.approx(
        pooled_d.std() / pooled_d.mean()
    )
    assert summary["corr_alpha_distance"] == pytest.approx(
        np.corrcoef(pooled_a, pooled_d)[0, 1]
    )


def test_alpha_distance_figure_draws_mean_and_sd_over_runs(
    tmp_path, monkeypatch, rng
):
    traces = {}
    for f in range(3):
        d = 1.0 + 0.1 * rng.normal(size=25)
        traces[_key("anger", 0, f, "distance")] = d
        traces[_key("anger", 0, f)] = d / (d + 1.0)
    _write_trace(tmp_path, traces)
    drawn = _capture(monkeypatch)
    paths = figures.make_figures(tmp_path, {"runs": []}, distance="sinkhorn")
    assert [p.name for p in paths["alpha_distance"]] == ["alpha_distance_anger.png"]
    fig = {p.name: f for f, p in drawn}["alpha_distance_anger.png"]
    top, bottom = fig.axes
    d = np.stack([traces[_key("anger", 0, f, "distance")] for f in range(3)])
    (line,) = top.get_lines()
    np.testing.assert_allclose(
        line.get_ydata(), d.astype(np.float32).astype(np.float64).mean(0)
    )
    assert "sinkhorn" in top.get_ylabel() and "Anger" in top.get_title()
    # α only (an earlier release's trace): no D/α figure.
    _write_trace(tmp_path, {_key("anger", 0, 0): np.full(5, 0.5)})
    assert figures.make_figures(tmp_path, {"runs": []})["alpha_distance"] == []


# ---------------------------------------------------------------- Fig. 3a


@pytest.mark.parametrize("n", [2, 5, 10])
def test_t_interval_matches_scipy(rng, n):
    x = rng.normal(0.05, 0.01, n)
    ref = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    got = figures.t_interval(x, 0.95)
    assert got == pytest.approx((ref.low, ref.high), rel=1e-10)
    with pytest.raises(ValueError, match=">= 2 values"):
        figures.t_interval(x[:1])


def _fig3a_results(rng, num_proposed: int) -> dict:
    runs = []
    for a in (0.25, 0.5, 0.75):
        for s in range(3):
            runs.append(
                {
                    "variant": "fixed_alpha",
                    "emotion": "anger",
                    "seed": s,
                    "alpha": a,
                    "dsp_spk": float(rng.uniform(0.02, 0.06)),
                    "dsp_rat": float(rng.uniform(0.02, 0.06)),
                }
            )
    for s in range(num_proposed):
        runs.append(
            {
                "variant": "proposed",
                "emotion": "anger",
                "seed": s,
                "alpha": None,
                "dsp_spk": float(rng.uniform(0.01, 0.04)),
                "dsp_rat": float(rng.uniform(0.01, 0.04)),
            }
        )
    return {"runs": runs}


def _legend_labels(fig: Figure) -> list[str]:
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


@pytest.mark.parametrize("num_proposed", [3, 10])
def test_fixed_alpha_figure_shows_seeds_and_honest_intervals(
    tmp_path, monkeypatch, rng, num_proposed
):
    results = _fig3a_results(rng, num_proposed)
    drawn = _capture(monkeypatch)
    path = figures.fixed_alpha_figure(results, tmp_path, emotion="anger")
    assert path.name == "fig3a_fixed_alpha_anger.png"
    ((fig, _),) = drawn
    (ax,) = fig.axes
    runs = results["runs"]
    prod = {
        a: np.array(
            [
                r["dsp_spk"] * r["dsp_rat"]
                for r in runs
                if r["variant"] == "fixed_alpha" and r["alpha"] == a
            ]
        )
        for a in (0.25, 0.5, 0.75)
    }
    proposed = np.array(
        [
            r["dsp_spk"] * r["dsp_rat"]
            for r in runs
            if r["variant"] == "proposed"
        ]
    )
    # Every fixed-α seed is a point.
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    got = sorted(map(tuple, points.get_offsets().tolist()))
    ref = sorted((a, float(p)) for a, ps in prod.items() for p in ps)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # The mean line and ± 1 SD (ddof 1) error bars.
    mean_line = next(ln for ln in ax.lines if ln.get_color() == "black")
    np.testing.assert_allclose(
        mean_line.get_ydata(), [prod[a].mean() for a in prod], rtol=1e-12
    )
    (bars,) = [
        c for c in ax.collections if type(c).__name__ == "LineCollection"
    ]
    spans = sorted(
        (seg[0][0], min(seg[0][1], seg[1][1]), max(seg[0][1], seg[1][1]))
        for seg in bars.get_segments()
    )
    for (x, low, high), a in zip(spans, prod, strict=True):
        sd = prod[a].std(ddof=1)
        assert x == a
        assert (low, high) == pytest.approx(
            (prod[a].mean() - sd, prod[a].mean() + sd), rel=1e-12
        )
    labels = _legend_labels(fig)
    assert f"Proposed: each seed (n = {num_proposed})" in labels
    bands = [p for p in ax.patches if isinstance(p, Rectangle)]
    if num_proposed >= 5:
        (band,) = bands
        ref = stats.ttest_1samp(proposed, 0.0).confidence_interval(0.95)
        got = (band.get_y(), band.get_y() + band.get_height())
        assert got == pytest.approx((ref.low, ref.high), rel=1e-9)
        assert f"Proposed mean, 95 % t-interval, n = {num_proposed}" in (labels)
    else:
        assert bands == []
        assert not any("interval," in t or "CI" in t for t in labels)
        assert any("no interval" in t for t in labels)
    # The legend sits outside the axes: it covers no data.
    renderer = _renderer(fig)
    (legend,) = fig.legends
    leg = legend.get_window_extent(renderer)
    frame = ax.get_window_extent(renderer)
    assert leg.y1 <= frame.y0 or leg.x0 >= frame.x1, (leg, frame)
    _assert_titles_fit(fig)
    assert "Anger" in ax.get_title()

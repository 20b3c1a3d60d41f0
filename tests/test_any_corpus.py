"""The pipeline on any corpus and attribute: config checks, group coding,
S2 with k groups, predictions.csv columns, older workdirs."""

import csv
import json
import pathlib

import numpy as np
import pytest
import soundfile
from fairlearn.metrics import demographic_parity_difference

from fairser_jax import config as config_lib
from fairser_jax import pipeline, results
from fairser_jax.data import corpus as corpus_lib
from fairser_jax.data import demo_corpus, study_sets
from fairser_jax.data import features as features_lib
from fairser_jax.report import figures
from fairser_jax.train import dataset as dataset_lib
from fairser_jax.wav2vec2 import extraction


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("emotions", ("anger", "boredom"), "config.data.classes"),
        ("folds", (0, -1), "config.folds"),
        ("folds", (0, 0), "config.folds"),
        ("data.format", "csv", "config.data.format"),
        ("data.speaker_attribute", "", "config.data.speaker_attribute"),
        ("data.rater_attribute", "age group", "config.data.rater_attribute"),
        ("data.classes", ("anger",), "config.data.classes"),
        ("data.num_folds", 1, "config.data.num_folds"),
        ("loss.group_pooling", "max", "config.loss.group_pooling"),
    ],
)
def test_config_checks_name_the_field(field, value, message):
    cfg = config_lib.get_default_config()
    section, _, name = field.rpartition(".")
    (cfg[section] if section else cfg)[name] = value
    with pytest.raises(ValueError, match=message):
        pipeline.validate_config(cfg)


def test_folds_beyond_the_corpus_name_the_fix(tmp_path):
    root = tmp_path / "demo"
    demo_corpus.generate(root, num_utterances=40, seed=0)
    cfg = config_lib.get_default_config()
    cfg.folds = (0, 5)
    with pytest.raises(ValueError, match=r"--config.folds=0,1,2,3,4"):
        pipeline.load_study(cfg, root)


def test_iemocap_has_gender_only(tmp_path):
    root = tmp_path / "demo"
    demo_corpus.generate(root, num_utterances=40, seed=0)
    cfg = config_lib.get_default_config()
    cfg.data.speaker_attribute = "age"
    with pytest.raises(ValueError, match="export_manifest"):
        pipeline.load_study(cfg, root)


def test_vocabulary_keeps_gender_codes():
    assert dataset_lib.vocabulary(["M", "M"]) == ("F", "M")
    assert dataset_lib.vocabulary(["M", "F", ""]) == ("F", "M")
    assert dataset_lib.vocabulary(["b", "a", "c", ""]) == ("a", "b", "c")


def _random_corpus(rng, n=300, raters=9, groups=("x", "y", "z")):
    group_of = {f"r{k}": groups[k % len(groups)] for k in range(raters)}
    records = []
    for i in range(n):
        panel = rng.choice(raters, size=rng.integers(2, 5), replace=False)
        label = str(rng.choice(["anger", "sadness", "neutral", "other"]))
        ratings = {}
        for r in panel:
            agree = rng.random() < 0.5
            ratings[f"r{r}"] = frozenset({label if agree else "neutral"})
        records.append(
            corpus_lib.Record(
                id=f"u{i:04d}",
                wav_path=pathlib.Path(f"u{i}.wav"),
                wav_exists=bool(rng.random() < 0.95),
                speaker=f"s{i % 7}",
                speaker_attributes={"gender": "MF"[i % 2]},
                label=None if label == "other" else label,
                fold=i % 5,
                ratings=ratings,
            )
        )
    return corpus_lib.Corpus(
        root=pathlib.Path("."),
        format="manifest",
        records=tuple(records),
        rater_attributes={r: {"age": g} for r, g in group_of.items()},
    ), group_of


@pytest.mark.parametrize("both", [True, False])
def test_s2_with_three_rater_groups_matches_a_plain_loop(both):
    """S2: agreeing raters all of one group, rated by >= 2 groups."""
    corpus, group_of = _random_corpus(np.random.default_rng(0))
    classes = ("neutral", "anger", "sadness")
    sets = study_sets.build(
        corpus,
        classes=classes,
        rater_attribute="age",
        require_both_genders=both,
    )
    want_s1, want_s2 = [], {}
    for u in corpus.records:
        if u.label not in classes or not u.wav_exists:
            continue
        want_s1.append(u.id)
        agree = [
            g for r, g in group_of.items() if u.label in u.ratings.get(r, ())
        ]
        rated = [g for r, g in group_of.items() if r in u.ratings]
        if len(set(agree)) == 1 and (not both or len(set(rated)) >= 2):
            want_s2[u.id] = agree[0]
    assert list(sets.s1_ids) == sorted(want_s1)
    assert dict(sets.s2_rater_group) == want_s2
    assert len(set(want_s2.values())) == 3
    table = sets.table1()
    assert list(table["S1"]["per_class"]) == list(classes)
    assert table["S2"]["per_group"] == {
        g: list(want_s2.values()).count(g) for g in ("x", "y", "z")
    }


def test_missing_rater_attribute_names_raters_and_source():
    corpus, _ = _random_corpus(np.random.default_rng(1))
    corpus = corpus_lib.Corpus(
        root=corpus.root,
        format="manifest",
        records=corpus.records,
        rater_attributes={"r0": {"age": "x"}},
        rater_source="m/raters.csv",
        rater_hint="fill the rater_age column of m/raters.csv",
    )
    with pytest.raises(ValueError, match=r"m/raters.csv has no age for .*r1"):
        study_sets.build(corpus, rater_attribute="age")


def _write_predictions(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_predictions_with_any_attribute_columns(tmp_path, rng):
    """Group columns named after the attribute, any values: the metrics
    equal fairlearn's on the raw strings."""
    header = results.prediction_columns("age_group", "region")
    assert header[-2:] == ("speaker_age_group", "rater_region")
    n = 200
    spk = rng.choice(["18-30", "31-50", "51+"], n)
    rat = rng.choice(["north", "south", "east", ""], n)
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    rows = [
        ["dnn", "anger", 0, "", i % 5, f"u{i}", y_true[i], 0.5, y_pred[i]]
        + [spk[i], rat[i]]
        for i in range(n)
    ]
    path = tmp_path / "predictions.csv"
    _write_predictions(path, header, rows)
    (run,) = results.runs_from_predictions(path)
    s2 = rat != ""
    assert run["dsp_spk"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=spk)
    )
    assert run["dsp_rat"] == pytest.approx(
        demographic_parity_difference(
            y_true[s2], y_pred[s2], sensitive_features=rat[s2]
        )
    )
    bad = list(header[:-1]) + ["rater_"]
    _write_predictions(path, bad, rows)
    with pytest.raises(ValueError, match=r"predictions.csv:1: header must"):
        results.read_predictions(path)
    rows[3][9] = ""
    _write_predictions(path, header, rows)
    with pytest.raises(ValueError, match=r":5: column 'speaker_age_group'"):
        results.read_predictions(path)


def test_embeddings_of_both_releases_read_the_same(tmp_path):
    n = 6
    common = dict(
        utterance_id=np.array([f"u{i}" for i in range(n)]),
        embedding=np.zeros((n, 3), np.float32),
    )
    spk = np.array(["a", "b", "c"] * 2)
    rat = np.array(["x", "", "y", "z", "", "x"])
    np.savez(
        tmp_path / "new.npz",
        **common,
        speaker_group=spk,
        rater_group=rat,
        speaker_attribute=np.array("age"),
        rater_attribute=np.array("region"),
    )
    np.savez(
        tmp_path / "old.npz",
        **common,
        speaker_gender=np.array(["M", "F"] * 3),
        rater_gender=np.array(["M", "", "F", "F", "", "M"]),
    )
    new = figures.load_embeddings(tmp_path / "new.npz")
    old = figures.load_embeddings(tmp_path / "old.npz")
    assert new["speaker_attribute"] == "age"
    assert list(new["rater_group"]) == list(rat)
    assert old["speaker_attribute"] == old["rater_attribute"] == "gender"
    assert list(old["speaker_group"]) == ["M", "F"] * 3
    style = figures._group_style(spk)
    assert [style[g][1] for g in "abc"] == ["a", "b", "c"]
    assert len({style[g][0] for g in "abc"}) == 3
    assert figures._group_style(np.array(["M", "F"]))["M"][1] == "male"


def test_resume_accepts_a_config_json_of_an_older_release(tmp_path):
    """config.json written before the new fields existed: their defaults
    are what that release did, so resuming with the same config is fine;
    a changed field is still refused."""
    cfg = config_lib.get_default_config()
    saved = json.loads(cfg.to_json_best_effort(sort_keys=True))
    for section, name in (
        ("data", "format"),
        ("data", "speaker_attribute"),
        ("data", "rater_attribute"),
        ("data", "classes"),
        ("data", "num_folds"),
        ("loss", "group_pooling"),
    ):
        del saved[section][name]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    current = cfg.to_json_best_effort(sort_keys=True, indent=2)
    config_lib.check_resume(tmp_path / "config.json", current)
    cfg.data.rater_attribute = "age"
    changed = cfg.to_json_best_effort(sort_keys=True, indent=2)
    with pytest.raises(config_lib.ConfigMismatchError, match="data"):
        config_lib.check_resume(tmp_path / "config.json", changed)


def test_resume_reads_a_missing_distance_as_the_old_d(tmp_path):
    """A config.json from before `two_sided.distance` existed ran the
    Sinkhorn divergence: resuming it with today's default (GW) is refused,
    with distance=sinkhorn accepted."""
    cfg = config_lib.get_default_config()
    saved = json.loads(cfg.to_json_best_effort(sort_keys=True))
    del saved["two_sided"]["distance"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert cfg.two_sided.distance != "sinkhorn"
    with pytest.raises(config_lib.ConfigMismatchError, match="two_sided"):
        config_lib.check_resume(
            tmp_path / "config.json",
            cfg.to_json_best_effort(sort_keys=True, indent=2),
        )
    cfg.two_sided.distance = "sinkhorn"
    config_lib.check_resume(
        tmp_path / "config.json",
        cfg.to_json_best_effort(sort_keys=True, indent=2),
    )


def test_group_codes_follow_the_vocabulary():
    ids = [f"u{i}" for i in range(6)]
    data, info = dataset_lib.make_dataset(
        ids=ids,
        features=np.zeros((6, 2), np.float32),
        labels=["anger", "sadness"] * 3,
        speaker_group=["c", "a", "b", "a", "c", "b"],
        folds=[0, 1, 2, 0, 1, 2],
        s2_rater_group={"u0": "y", "u3": "x"},
        speaker_groups=("a", "b", "c"),
        rater_groups=("x", "y", "z"),
    )
    assert data.num_speaker_groups == 3 and data.num_rater_groups == 3
    np.testing.assert_array_equal(data.speaker_group, [2, 0, 1, 0, 2, 1])
    np.testing.assert_array_equal(
        info.rater_codes(np.arange(6)), [1, -1, -1, 0, -1, -1]
    )
    np.testing.assert_array_equal(data.in_s2, [1, 0, 0, 1, 0, 0])
    with pytest.raises(ValueError, match="not in the speaker vocabulary"):
        dataset_lib.make_dataset(
            ids=ids[:1],
            features=np.zeros((1, 2), np.float32),
            labels=["anger"],
            speaker_group=["d"],
            folds=[0],
            s2_rater_group={},
            speaker_groups=("a", "b"),
        )


def test_class_names_that_cannot_be_file_names_are_refused():
    cfg = config_lib.get_default_config()
    cfg.data.classes = ("anger", "happy/excited")
    cfg.emotions = ("anger",)
    with pytest.raises(ValueError, match="letters, digits"):
        pipeline.validate_config(cfg)


def test_embedding_files_of_any_class_name_are_found():
    m = figures._embedding_file().match("fair_rat_very_happy_seed3.npz")
    assert (m["variant"], m["emotion"], m["seed"]) == (
        "fair_rat",
        "very_happy",
        "3",
    )
    m = figures._embedding_file().match("dnn_Class-1_seed0.npz")
    assert (m["variant"], m["emotion"]) == ("dnn", "Class-1")


def test_a_speaker_attribute_with_one_value_is_refused():
    corpus, _ = _random_corpus(np.random.default_rng(2))
    records = tuple(
        corpus_lib.Record(**{**r.__dict__, "speaker_attributes": {"g": "F"}})
        for r in corpus.records
    )
    corpus = corpus_lib.Corpus(
        root=pathlib.Path("m"),
        format="manifest",
        records=records,
        rater_attributes=corpus.rater_attributes,
    )
    cfg = config_lib.get_default_config()
    cfg.data.speaker_attribute = "g"
    cfg.data.rater_attribute = "age"
    study = study_sets.build(corpus, rater_attribute="age")
    ids = tuple(r.id for r in records)
    store = features_lib.FeatureSet(
        ids=ids, features=np.zeros((len(ids), 4), np.float32), manifest={}
    )
    with pytest.raises(ValueError, match="single value 'F'"):
        pipeline.make_training_table(cfg, corpus, study, store)


def test_extraction_reads_a_manifest_without_fold_checks(tmp_path):
    """Four speakers cannot fill five speaker folds, but features do not
    depend on folds: the extractor's reading of the manifest ignores them."""
    folder = tmp_path / "m"
    (folder / "wav").mkdir(parents=True)
    rows = ["utterance_id,wav_path,speaker_id,speaker_gender"]
    for i in range(8):
        soundfile.write(folder / "wav" / f"u{i}.wav", np.zeros(800), 16_000)
        rows.append(f"u{i},wav/u{i}.wav,s{i % 4},{'MF'[i % 2]}")
    (folder / "utterances.csv").write_text("\n".join(rows) + "\n")
    (folder / "ratings.csv").write_text("utterance_id,rater_id,label\n")
    (folder / "raters.csv").write_text("rater_id,rater_gender\n")
    ids, paths, _ = extraction.resolve_source(folder)
    assert ids == [f"u{i}" for i in range(8)]
    assert paths[3] == folder / "wav" / "u3.wav"


def test_a_group_of_one_utterance_is_named(caplog):
    """A speaker group with one utterance moved ΔSP_spk from 0.007 to
    0.111 without a word; now each small group is named with its size."""
    group_of = {f"u{i}": "F" if i % 2 else "M" for i in range(40)}
    group_of["u99"] = "X"
    with caplog.at_level("WARNING"):
        small = dataset_lib.warn_small_groups(
            "speaker", "gender", "S1", group_of
        )
    assert small == [("X", 1)]
    assert "'X' (1)" in caplog.text and "S1" in caplog.text
    caplog.clear()
    big = {f"u{i}": "F" if i % 2 else "M" for i in range(40)}
    with caplog.at_level("WARNING"):
        assert dataset_lib.warn_small_groups("rater", "gender", "S2", big) == []
    assert caplog.text == ""

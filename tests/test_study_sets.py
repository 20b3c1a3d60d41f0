"""Tests of S1/S2, rater-gender mapping, folds and binary targets."""

import json
import pathlib

import numpy as np
import pytest
from test_iemocap import make_corpus

from fairser_jax.constants import EMOTIONS
from fairser_jax.data import iemocap, study_sets

RATERS = {"E1": "M", "E2": "F", "E3": "F", "E4": "M", "E5": "M", "E6": "F"}


def utt(
    uid: str,
    raw: str,
    raters: dict,
    *,
    session: int = 1,
    wav: bool = True,
    self_labels=None,
) -> iemocap.Utterance:
    return iemocap.Utterance(
        id=uid,
        session=session,
        speaker_gender=uid[-4],
        label=iemocap.HEADER_CODES[raw],
        raw_label=raw,
        rater_labels={k: tuple(v) for k, v in raters.items()},
        wav_path=pathlib.Path(f"/nowhere/{uid}.wav"),
        wav_exists=wav,
        self_labels=self_labels or {},
    )


# Hand-built cases: (utterance, in S1, S2 group with both genders required,
# S2 group without that rule); None = not in S2.
CASES = [
    # Only the men (E1, E4) give the consensus class.
    (
        utt("Ses01F_a_F000", "neu", {
            "E1": ["Neutral"], "E4": ["Neutral"], "E2": ["Sadness"]
        }),
        True, "M", "M",
    ),
    # Only the woman agrees; her second label counts.
    (
        utt("Ses01F_a_F001", "sad", {
            "E1": ["Neutral"], "E3": ["Frustration", "Sadness"]
        }),
        True, "F", "F",
    ),
    # Mixed agreement: one man and one woman give the consensus class.
    (
        utt("Ses01F_a_M000", "ang", {
            "E1": ["Anger"], "E2": ["Anger"], "E3": ["Frustration"]
        }),
        True, None, None,
    ),
    # Only women rated (all agreeing): S2 only without the rule.
    (
        utt("Ses02F_b_M000", "fru", {
            "E2": ["Frustration"], "E3": ["Frustration"], "E6": ["Anger"]
        }, session=2),
        True, None, "F",
    ),
    # Missing wav: in neither set.
    (
        utt("Ses02F_b_F000", "neu", {
            "E1": ["Neutral"], "E2": ["Sadness"]
        }, session=2, wav=False),
        False, None, None,
    ),
    # exc merged into happiness; "Excited" and "Happiness" both count.
    (
        utt("Ses03M_c_F000", "exc", {
            "E5": ["Happiness"], "E4": ["Excited"], "E6": ["Neutral"]
        }, session=3),
        True, "M", "M",
    ),
    (
        utt("Ses03M_c_M000", "hap", {
            "E5": ["Neutral"], "E6": ["Excited"], "E2": ["Surprise"]
        }, session=3),
        True, "F", "F",
    ),
    # "Neutral state" counts as neutral; a self-evaluation never counts.
    (
        utt("Ses04F_d_M000", "neu", {
            "E2": ["Neutral state"], "E1": ["Frustration"]
        }, session=4, self_labels={"M1": ("Neutral",)}),
        True, "F", "F",
    ),
    # Nobody's labels include the consensus class.
    (
        utt("Ses04F_d_F000", "neu", {
            "E2": ["Sadness"], "E1": ["Frustration"]
        }, session=4),
        True, None, None,
    ),
    # Outside the five classes.
    (
        utt("Ses05F_e_F000", "xxx", {"E2": ["Fear"], "E1": ["Surprise"]},
            session=5),
        False, None, None,
    ),
    (
        utt("Ses05F_e_M000", "sur", {"E2": ["Surprise"], "E1": ["Surprise"]},
            session=5),
        False, None, None,
    ),
]  # fmt: skip


@pytest.mark.parametrize("both", [True, False])
def test_hand_built_cases(both):
    records = [c[0] for c in CASES]
    sets = study_sets.build(records, RATERS, require_both_genders=both)
    want_s1 = sorted(c[0].id for c in CASES if c[1])
    column = 2 if both else 3
    want_s2 = {c[0].id: c[column] for c in CASES if c[column] is not None}
    assert list(sets.s1_ids) == want_s1
    assert list(sets.s2_ids) == sorted(want_s2)
    assert dict(sets.s2_rater_gender) == want_s2
    assert sets.labels["Ses03M_c_F000"] == "happiness"
    assert sets.require_both_genders is both


def test_table1_counts_match_a_plain_loop():
    records = [c[0] for c in CASES]
    sets = study_sets.build(records, RATERS)
    table = sets.table1()
    s1 = [c[0] for c in CASES if c[1]]
    for name, members in (
        ("S1", s1),
        ("S2", [u for u in s1 if u.id in sets.s2_rater_gender]),
    ):
        expected = {e: 0 for e in EMOTIONS}
        for u in members:
            expected[u.label] += 1
        assert table[name]["per_class"] == expected
        assert table[name]["n"] == len(members)
    assert table["S2"]["per_group"] == {"M": 2, "F": 3}
    text = study_sets.format_table1(table)
    assert "| S1 | 8 | 3 | 2 | 1 | 1 | 1 |" in text


def test_fixture_corpus_sets(tmp_path):
    root = make_corpus(tmp_path / "c")
    mapping = iemocap.load_rater_gender(
        pathlib.Path(__file__).parent
        / "fixtures"
        / "iemocap_mini"
        / "rater_gender.json"
    )
    sets = study_sets.build(iemocap.read_corpus(root), mapping)
    assert sets.s1_ids == (
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M000",
        "Ses01F_impro01_M001",
        "Ses02M_script01_1_F000",
    )
    assert dict(sets.s2_rater_gender) == {
        "Ses01F_impro01_M000": "M",
        "Ses02M_script01_1_F000": "M",
    }
    loose = study_sets.build(
        iemocap.read_corpus(root), mapping, require_both_genders=False
    )
    assert loose.s2_rater_gender["Ses01F_impro01_F000"] == "F"


def test_load_rater_gender_key_forms(tmp_path):
    path = tmp_path / "raters.json"
    path.write_text(json.dumps({"C-E1": "m", "E2": "F", " E10 ": "M"}))
    assert iemocap.load_rater_gender(path) == {
        "E1": "M",
        "E2": "F",
        "E10": "M",
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('["E1", "M"]', "expected a JSON object"),
        ('{"E1": "male"}', "expected 'M' or 'F'"),
        ('{"E1": 1}', "expected 'M' or 'F'"),
        ('{"X1": "M"}', "not a rater id"),
        ('{"C-F1": "M"}', "not a rater id"),
        ('{"E1": "M", "C-E1": "M"}', "given twice"),
    ],
)
def test_bad_rater_maps(tmp_path, content, message):
    path = tmp_path / "raters.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        iemocap.load_rater_gender(path)
    assert str(path) in str(err.value)


def test_missing_rater_map_file(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="--config.data.rater_gender=PATH"
    ):
        iemocap.load_rater_gender(tmp_path / "absent.json")


def test_s2_without_mapping_names_raters_and_flag():
    records = [c[0] for c in CASES]
    with pytest.raises(ValueError) as err:
        study_sets.build(records, None)
    message = str(err.value)
    assert "E1, E2, E3, E4, E5, E6" in message
    assert "--config.data.rater_gender=PATH" in message
    assert "config.data.rater_gender" in message
    partial = {"E1": "M", "E2": "F", "E3": "F"}
    with pytest.raises(ValueError, match="rater.s. E4, E5, E6") as err:
        study_sets.build(records, partial)
    assert "--config.data.rater_gender=PATH" in str(err.value)


def test_duplicate_ids_rejected():
    u = CASES[0][0]
    with pytest.raises(ValueError, match="appear twice"):
        study_sets.build([u, u], RATERS)


def test_folds_leave_one_session_out():
    records = [c[0] for c in CASES]
    fold = study_sets.folds(records)
    assert fold.dtype == np.int32
    np.testing.assert_array_equal(fold, [u.session - 1 for u in records])
    np.testing.assert_array_equal(
        study_sets.folds(np.array([1, 5, 3])), [0, 4, 2]
    )
    # Fold k's test set is exactly session k+1.
    for k in range(study_sets.NUM_FOLDS):
        test = {u.id for u, f in zip(records, fold, strict=True) if f == k}
        assert test == {u.id for u in records if u.session == k + 1}
    with pytest.raises(ValueError, match=r"sessions \[6\]"):
        study_sets.folds([1, 6])


def test_binary_targets():
    labels = ["neutral", "anger", None, "neutral", "happiness"]
    for emotion in EMOTIONS:
        want = [int(x == emotion) for x in labels]
        got = study_sets.binary_targets(labels, emotion)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="unknown emotion"):
        study_sets.binary_targets(labels, "excited")
    with pytest.raises(ValueError, match="header codes"):
        study_sets.binary_targets(["neu", "ang"], "anger")

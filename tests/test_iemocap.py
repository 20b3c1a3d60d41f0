"""Tests of the IEMOCAP reader on hand-written EmoEvaluation fixtures."""

import logging
import pathlib
import shutil

import pytest

from fairser_jax.data import iemocap

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "iemocap_mini"
MISSING_WAV = "Ses02M_script01_1_M000"

# Worked out by hand from the two fixture files.
EXPECTED = {
    "Ses01F_impro01_F000": dict(
        session=1,
        speaker_gender="F",
        speaker="Ses01F",
        label="neutral",
        raw_label="neu",
        rater_labels={"E2": ("Neutral",), "E3": ("Neutral", "Frustration")},
        self_labels={"F1": ("Neutral",)},
        start=6.2901,
        end=8.2357,
        vad=(2.5, 2.5, 2.5),
        dialog="Ses01F_impro01",
    ),
    "Ses01F_impro01_M000": dict(
        session=1,
        speaker_gender="M",
        speaker="Ses01M",
        label="frustration",
        raw_label="fru",
        rater_labels={
            "E1": ("Frustration", "Anger"),
            "E2": ("Neutral state",),
            "E4": ("Frustration",),
        },
        self_labels={"M1": ("Anger",)},
        start=10.01,
        end=11.3925,
        vad=(2.0, 3.5, 3.0),
        dialog="Ses01F_impro01",
    ),
    "Ses01F_impro01_F001": dict(
        session=1,
        speaker_gender="F",
        speaker="Ses01F",
        label=None,
        raw_label="xxx",
        rater_labels={
            "E2": ("Other:confused",),
            "E3": ("Surprise",),
            "E4": ("Fear",),
        },
        self_labels={},
        start=14.8872,
        end=18.0175,
        vad=(2.5, 2.5, 2.5),
        dialog="Ses01F_impro01",
    ),
    "Ses01F_impro01_M001": dict(
        session=1,
        speaker_gender="M",
        speaker="Ses01M",
        label="happiness",
        raw_label="exc",
        rater_labels={
            "E1": ("Excited",),
            "E2": ("Happiness", "Excited"),
            "E3": ("Neutral",),
        },
        self_labels={},
        start=19.29,
        end=20.7875,
        vad=(4.0, 4.0, 3.0),
        dialog="Ses01F_impro01",
    ),
    "Ses02M_script01_1_F000": dict(
        session=2,
        speaker_gender="F",
        speaker="Ses02F",
        label="sadness",
        raw_label="sad",
        rater_labels={
            "E1": ("Sadness",),
            "E5": ("Sadness",),
            "E6": ("Neutral",),
        },
        self_labels={},
        start=1.0,
        end=2.5,
        vad=(1.5, 2.0, 2.0),
        dialog="Ses02M_script01_1",
    ),
    "Ses02M_script01_1_M000": dict(
        session=2,
        speaker_gender="M",
        speaker="Ses02M",
        label="anger",
        raw_label="ang",
        rater_labels={
            "E2": ("Anger",),
            "E3": ("Anger",),
            "E5": ("Frustration",),
        },
        self_labels={},
        start=3.0,
        end=4.25,
        vad=(1.5, 4.5, 4.0),
        dialog="Ses02M_script01_1",
    ),
}


def make_corpus(
    root: pathlib.Path, *, transform=None, missing=(MISSING_WAV,)
) -> pathlib.Path:
    """Copies the fixture to ``root``, adds wavs (except ``missing``)."""
    shutil.copytree(FIXTURE, root)
    if transform is not None:
        for txt in root.glob("Session*/dialog/EmoEvaluation/*.txt"):
            txt.write_bytes(transform(txt.read_bytes()))
    for utt_id, fields in EXPECTED.items():
        if utt_id in missing:
            continue
        folder = (
            root
            / f"Session{fields['session']}"
            / "sentences"
            / "wav"
            / fields["dialog"]
        )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{utt_id}.wav").write_bytes(b"RIFF")
    return root


def check_records(root: pathlib.Path, records) -> None:
    assert [u.id for u in records] == sorted(EXPECTED)
    for u in records:
        want = EXPECTED[u.id]
        for field, value in want.items():
            assert getattr(u, field) == value, (u.id, field)
        assert u.wav_path == (
            root
            / f"Session{want['session']}"
            / "sentences"
            / "wav"
            / want["dialog"]
            / f"{u.id}.wav"
        )
        assert u.wav_exists == (u.id != MISSING_WAV)


def test_reads_fixture_as_worked_out_by_hand(tmp_path):
    root = make_corpus(tmp_path / "corpus")
    report = iemocap.read_corpus_with_report(root)
    check_records(root, report.utterances)
    assert report.missing_wavs == [MISSING_WAV]
    # The Categorical/ sub-folder is not read.
    assert report.num_files == 2
    assert iemocap.read_corpus(root) == report.utterances


@pytest.mark.parametrize(
    "name, transform",
    [
        ("crlf", lambda b: b.replace(b"\n", b"\r\n")),
        ("bom", lambda b: b"\xef\xbb\xbf" + b),
        ("bom_crlf", lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")),
        (
            "trailing_spaces",
            lambda b: b.replace(b"\n", b"  \t \n"),
        ),
        ("no_final_newline", lambda b: b.rstrip(b"\n")),
        ("extra_blank_lines", lambda b: b.replace(b"\n\n", b"\n\n\n\n")),
    ],
)
def test_line_ending_and_whitespace_variants(tmp_path, name, transform):
    root = make_corpus(tmp_path / name, transform=transform)
    check_records(root, iemocap.read_corpus(root))


def test_missing_wavs_are_counted_and_logged(tmp_path, caplog):
    root = make_corpus(
        tmp_path / "c", missing=(MISSING_WAV, "Ses01F_impro01_F001")
    )
    with caplog.at_level(logging.WARNING):
        report = iemocap.read_corpus_with_report(root)
    assert report.missing_wavs == ["Ses01F_impro01_F001", MISSING_WAV]
    assert len(report.utterances) == len(EXPECTED)
    assert "2 of 6 utterances" in caplog.text


def test_dot_files_are_skipped(tmp_path):
    root = make_corpus(tmp_path / "c")
    emo = root / "Session1" / "dialog" / "EmoEvaluation"
    (emo / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07 junk")
    assert len(iemocap.read_corpus(root)) == len(EXPECTED)


@pytest.mark.parametrize(
    "word, cls",
    [
        ("Neutral", "neutral"),
        ("Neutral state", "neutral"),
        ("neutral  State", "neutral"),
        ("Happiness", "happiness"),
        ("Excited", "happiness"),
        ("Anger", "anger"),
        ("Sadness", "sadness"),
        ("Frustration", "frustration"),
        ("Surprise", None),
        ("Fear", None),
        ("Disgust", None),
        ("Other", None),
        ("Other:confused", None),
    ],
)
def test_label_words(word, cls):
    assert iemocap.label_class(word) == cls


BAD_LINES = [
    (
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\n",
        "malformed header",
    ),
    (
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tbor\t[2.5, 2.5, 2.5]\n",
        "unknown consensus code 'bor'",
    ),
    (
        "[6.2901 - 8.2357]\tSes01F_impro01_X000\tneu\t[2.5, 2.5, 2.5]\n",
        "not of the form",
    ),
    (
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5, 2.5]\n",
        "needs 3 values",
    ),
    (
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5, x, 2.5]\n",
        r"bad \[v, a, d\]",
    ),
    ("C-E2:\tNeutral;\t()\n", "outside an utterance block"),
]


@pytest.mark.parametrize("text, message", BAD_LINES)
def test_malformed_first_block_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text("% header\n\n" + text)
    with pytest.raises(iemocap.CorpusFormatError, match=message) as err:
        iemocap.parse_emo_evaluation(path)
    assert f"{path}:3:" in str(err.value)


GOOD_HEADER = "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5, 2.5, 2.5]\n"


@pytest.mark.parametrize(
    "line, message",
    [
        ("C-E2 Neutral;\t()\n", "unrecognised line"),
        ("Neutral;\n", "unrecognised line"),
        ("C-X1:\tNeutral;\t()\n", "unknown evaluator C-X1"),
        ("C-E2:\t;\t()\n", "no label words"),
        ("C-E2:\tNeutral;\t(unclosed\n", "does not end with"),
        ("C-E3:\tAnger;\t()\n", "appears twice"),
        # Words outside IEMOCAP's label set, e.g. a truncated "Excited".
        ("C-E2:\tExc;\t()\n", "unknown label word 'Exc'"),
        ("C-E2:\tNeutral; Boredom;\t()\n", "unknown label word 'Boredom'"),
        ("C-F1:\tSurpr;\t()\n", "unknown label word 'Surpr'"),
        # Every C- and A- line ends with its parenthesised comment.
        ("C-E2:\tNeutral;\n", "C-E2 line does not end with"),
        ("A-E2:\tval 3; act 2; dom  2;\n", "A-E2 line does not end with"),
    ],
)
def test_malformed_evaluator_lines(tmp_path, line, message):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(
        "% header\n\n" + GOOD_HEADER + "C-E3:\tNeutral;\t()\n" + line
    )
    with pytest.raises(iemocap.CorpusFormatError, match=message) as err:
        iemocap.parse_emo_evaluation(path)
    assert f"{path}:5:" in str(err.value)


def test_session_mismatch_and_duplicate_ids(tmp_path):
    root = make_corpus(tmp_path / "a")
    moved = root / "Session2" / "dialog" / "EmoEvaluation"
    shutil.copy(
        root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt",
        moved / "Ses01F_impro01.txt",
    )
    with pytest.raises(iemocap.CorpusFormatError, match="belongs to session 1"):
        iemocap.read_corpus(root)

    root = make_corpus(tmp_path / "b")
    emo = root / "Session1" / "dialog" / "EmoEvaluation"
    shutil.copy(emo / "Ses01F_impro01.txt", emo / "Ses01F_impro01_copy.txt")
    with pytest.raises(iemocap.CorpusFormatError, match="already defined"):
        iemocap.read_corpus(root)


def test_not_utf8_and_empty_root(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"% header\n\xff\xfe\n")
    with pytest.raises(iemocap.CorpusFormatError, match="not UTF-8"):
        iemocap.parse_emo_evaluation(path)
    with pytest.raises(FileNotFoundError, match="no EmoEvaluation files"):
        iemocap.read_corpus(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        iemocap.read_corpus(tmp_path / "absent")


def test_count_labels(tmp_path):
    records = iemocap.read_corpus(make_corpus(tmp_path / "c"))
    assert iemocap.count_labels(records) == {
        "ang": 1,
        "exc": 1,
        "fru": 1,
        "neu": 1,
        "sad": 1,
        "xxx": 1,
    }


# --- Truncated or incomplete EmoEvaluation files -------------------------
# Line numbers of the fixture's Ses01F_impro01.txt: blocks start at lines
# 3 (F000), 10 (M000), 18 (F001) and 23 (M001); the file has 27 lines.
EMO_1 = pathlib.Path(
    "Session1", "dialog", "EmoEvaluation", "Ses01F_impro01.txt"
)


def _cut_after(prefix: str):
    """A transform that keeps Ses01F_impro01.txt up to ``prefix`` only."""

    def cut(data: bytes) -> bytes:
        text = data.decode("utf-8")
        if "Ses01F_impro01_F000" not in text:  # the Session 2 file
            return data
        end = text.index(prefix) + len(prefix)
        return text[:end].encode("utf-8")

    return cut


@pytest.mark.parametrize(
    "prefix, line, message",
    [
        # "Excited" cut to "Exc", with the rest of the line.
        ("C-E1:\tExc", 24, "C-E1 line does not end with"),
        # A header line without its consensus code and [v, a, d].
        ("[19.2900 - 20.7875]\tSes01F_impro01_M001", 23, "malformed header"),
        ("[19.2900 - 20.7875]\tSes01F_impro01_M001\tex", 23, "malformed"),
        # Cut inside a dimensional line (these were skipped unread).
        ("A-E1:\tval 2; act", 15, "A-E1 line does not end with"),
        # Cut inside a comment, and just before it.
        ('(sarcastic; he says: "fi', 11, r"does not end with '\)'"),
        ("C-E2:\tNeutral state;", 12, "C-E2 line does not end with"),
        # A complete header line and nothing after it.
        (
            "Ses01F_impro01_M001\texc\t[4.0000, 4.0000, 3.0000]\n",
            23,
            "no C-E rater line",
        ),
    ],
)
def test_file_cut_mid_block_is_an_error(tmp_path, prefix, line, message):
    root = make_corpus(tmp_path / "c", transform=_cut_after(prefix))
    with pytest.raises(ValueError, match=message) as err:
        iemocap.read_corpus(root)
    text = str(err.value)
    assert f"{root / EMO_1}:{line}:" in text
    assert "re-copy" in text and "\n" not in text


def test_file_cut_between_blocks_is_an_error(tmp_path):
    """Cut at a line end: the lost utterances still have their wavs."""
    end_of_block_1 = "(mildly aggravated but staying polite, attitude)\n"
    root = make_corpus(tmp_path / "c", transform=_cut_after(end_of_block_1))
    with pytest.raises(iemocap.CorpusFormatError) as err:
        iemocap.read_corpus(root)
    text = str(err.value)
    assert f"{root / EMO_1}:8:" in text
    assert "3 wav file(s)" in text and "Ses01F_impro01_F001.wav" in text
    assert "re-copy" in text and "\n" not in text


def test_wav_without_evaluation_is_an_error(tmp_path):
    root = make_corpus(tmp_path / "a")
    wav_dir = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    (wav_dir / "Ses01F_impro01_F002.wav").write_bytes(b"RIFF")
    with pytest.raises(iemocap.CorpusFormatError) as err:
        iemocap.read_corpus(root)
    assert f"{root / EMO_1}:27:" in str(err.value)
    assert "1 wav file(s)" in str(err.value)
    assert "Ses01F_impro01_F002.wav" in str(err.value)

    # A dialog whose EmoEvaluation file is missing altogether.
    root = make_corpus(tmp_path / "b")
    other = root / "Session2" / "sentences" / "wav" / "Ses02F_impro03"
    other.mkdir(parents=True)
    (other / "Ses02F_impro03_M000.wav").write_bytes(b"RIFF")
    with pytest.raises(iemocap.CorpusFormatError) as err:
        iemocap.read_corpus(root)
    missing = root / "Session2/dialog/EmoEvaluation/Ses02F_impro03.txt"
    assert f"{missing} does not exist" in str(err.value)
    assert "re-copy" in str(err.value)


def test_non_wav_and_dot_files_beside_wavs_are_ignored(tmp_path):
    root = make_corpus(tmp_path / "c")
    wav_dir = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    (wav_dir / "._Ses01F_impro01_F000.wav").write_bytes(b"\x00\x05")
    (wav_dir / "notes.txt").write_text("mine")
    (root / "Session1" / "sentences" / "wav" / ".DS_Store").write_bytes(b"")
    assert len(iemocap.read_corpus(root)) == len(EXPECTED)


def test_every_iemocap_label_word_is_accepted(tmp_path):
    words = (
        "Neutral; Neutral state; NEUTRAL  state; Happiness; Excited; Anger; "
        "Sadness; Frustration; Surprise; Fear; Disgust; Other; "
        "Other:confused; other: mocking;"
    )
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(
        "% header\n\n" + GOOD_HEADER + f"C-E1:\t{words}\t()\n"
        "A-E1:\tval 3; act 2; dom  ;\t()\n"
    )
    (block,) = iemocap.parse_emo_evaluation(path)
    assert len(block["rater_labels"]["E1"]) == 14

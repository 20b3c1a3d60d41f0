"""Tests of the manifest corpus format (three CSV files) and its export."""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from fairser_jax.data import corpus, demo_corpus, layouts, manifest, study_sets

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "iemocap_mini"
MISSING_WAV = "Ses02M_script01_1_M000"
# The fixture's raters, with genders chosen here (not the fixture's file).
MINI_RATER_GENDER = {
    "E1": "F",
    "E2": "M",
    "E3": "M",
    "E4": "F",
    "E5": "F",
    "E6": "M",
}


def make_mini(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The IEMOCAP fixture with wavs (but one) and a rater-gender file."""
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURE, root)
    (root / "rater_gender.json").unlink()
    for record in layouts.read(root, format="iemocap").records:
        if record.id != MISSING_WAV:
            record.wav_path.parent.mkdir(parents=True, exist_ok=True)
            record.wav_path.write_bytes(b"RIFF")
    mapping = tmp_path / "genders.json"
    mapping.write_text(json.dumps(MINI_RATER_GENDER))
    return root, mapping


def check_round_trip(original: corpus.Corpus, back: corpus.Corpus) -> None:
    kept = [r for r in original.records if r.wav_exists]
    assert [r.id for r in back.records] == [r.id for r in kept]
    assert back.format == "manifest"
    for want, got in zip(kept, back.records, strict=True):
        assert got.wav_path.resolve() == want.wav_path.resolve(), want.id
        assert got.wav_exists
        assert got.speaker == want.speaker, want.id
        assert dict(got.speaker_attributes) == dict(want.speaker_attributes)
        assert got.label == want.label, want.id
        assert got.fold == want.fold, want.id
        assert dict(got.ratings) == dict(want.ratings), want.id
    assert {k: dict(v) for k, v in back.rater_attributes.items()} == {
        k: dict(v) for k, v in original.rater_attributes.items()
    }
    assert back.num_folds == original.num_folds
    want_sets = study_sets.build(original)
    got_sets = study_sets.build(back)
    assert got_sets.s1_ids == want_sets.s1_ids
    assert got_sets.s2_ids == want_sets.s2_ids
    assert dict(got_sets.s2_rater_group) == dict(want_sets.s2_rater_group)
    assert dict(got_sets.labels) == dict(want_sets.labels)


def test_round_trip_iemocap_fixture(tmp_path, caplog):
    root, mapping = make_mini(tmp_path)
    original = layouts.read(root, format="iemocap", rater_gender=mapping)
    assert {r.id for r in original.records if not r.wav_exists} == {MISSING_WAV}
    out = tmp_path / "manifest"
    with caplog.at_level(logging.INFO):
        summary = manifest.write(original, out)
    assert summary == {
        "out": str(out),
        "num_utterances": 5,
        "num_ratings": 16,
        "num_raters": 6,
        "num_left_out": 1,
    }
    assert "left out 1 utterance(s)" in caplog.text
    assert MISSING_WAV in caplog.text
    lines = (out / "utterances.csv").read_text().splitlines()
    assert lines[0] == (
        "utterance_id,wav_path,speaker_id,speaker_gender,label,fold"
    )
    # The audio lies outside the manifest folder: an absolute path. The
    # no-consensus label is empty.
    assert lines[2] == (
        f"Ses01F_impro01_F001,{root}/Session1/sentences/wav/"
        "Ses01F_impro01/Ses01F_impro01_F001.wav,Ses01F,F,,0"
    )
    assert (out / "raters.csv").read_text().splitlines() == [
        "rater_id,rater_gender",
        *(f"{r},{g}" for r, g in MINI_RATER_GENDER.items()),
    ]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    back = layouts.read(out)  # auto-detected
    check_round_trip(original, back)
    sets = study_sets.build(back)
    assert sets.s1_ids == (
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M000",
        "Ses01F_impro01_M001",
        "Ses02M_script01_1_F000",
    )


def test_round_trip_demo_corpus(tmp_path):
    root = tmp_path / "demo"
    demo_corpus.generate(root, num_utterances=60, seed=0)
    original = layouts.read(root, format="iemocap")
    manifest.write(original, tmp_path / "manifest")
    back = manifest.read(tmp_path / "manifest")
    check_round_trip(original, back)
    assert len(back.records) == 60
    assert study_sets.build(back).s2_ids  # the check above is not vacuous


def test_write_refuses_existing_files_unless_overwrite(tmp_path):
    root, mapping = make_mini(tmp_path)
    original = layouts.read(root, format="iemocap", rater_gender=mapping)
    out = tmp_path / "m"
    out.mkdir()
    (out / "raters.csv").write_text("mine\n")
    with pytest.raises(ValueError, match="raters.csv.*--overwrite"):
        manifest.write(original, out)
    assert (out / "raters.csv").read_text() == "mine\n"
    assert not (out / "utterances.csv").exists()
    manifest.write(original, out, overwrite=True)
    assert (out / "raters.csv").read_text().startswith("rater_id,")


def test_wav_paths_survive_moving_the_folder(tmp_path):
    """Audio inside the manifest folder is written relative to it, audio
    outside it absolute: moving the folder (with the audio inside it)
    keeps every path valid, and so does moving the folder alone."""
    root, mapping = make_mini(tmp_path / "outside")
    original = layouts.read(root, format="iemocap", rater_gender=mapping)
    alone = tmp_path / "alone"
    manifest.write(original, alone)
    inside = tmp_path / "inside"
    shutil.copytree(root, inside / "audio")
    holding = layouts.read(
        inside / "audio", format="iemocap", rater_gender=mapping
    )
    manifest.write(holding, inside)

    def cells(folder):
        rows = (folder / "utterances.csv").read_text().splitlines()[1:]
        return [row.split(",")[1] for row in rows]

    assert cells(alone) and all(
        pathlib.Path(c).is_absolute() for c in cells(alone)
    )
    assert all(c.startswith("audio/Session") for c in cells(inside))
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(inside, moved)
    moved_alone = tmp_path / "elsewhere" / "alone"
    shutil.move(alone, moved_alone)
    for folder, audio in ((moved, moved / "audio"), (moved_alone, root)):
        back = manifest.read(folder)
        assert [r.id for r in back.records] == [
            r.id for r in original.records if r.wav_exists
        ]
        for record in back.records:
            assert record.wav_exists and record.wav_path.is_file()
            assert record.wav_path.resolve().is_relative_to(audio.resolve())
    assert manifest.wav_cell(root / "a.wav", root) == "a.wav"
    assert manifest.wav_cell(root / "x" / ".." / "a.wav", root / "x") == str(
        root / "a.wav"
    )


def test_files_get_the_mode_of_a_plain_open(tmp_path):
    """Not mkstemp's owner-only 0600: 0666 less the umask, as open()."""
    root, mapping = make_mini(tmp_path)
    original = layouts.read(root, format="iemocap", rater_gender=mapping)
    old = os.umask(0o027)
    try:
        manifest.write(original, tmp_path / "m")
    finally:
        os.umask(old)
    for name in manifest.FILES:
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o640, name


def run_export(
    *args: str, umask: int | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fairser_jax.export_manifest", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        preexec_fn=None if umask is None else lambda: os.umask(umask),
    )


def error_lines(stderr: str) -> list[str]:
    """The error lines of ``stderr``, checked to be one, the last line.

    Log lines (the missing wav's warning) may come before it.
    """
    lines = stderr.strip().splitlines()
    errors = [x for x in lines if x.startswith("export_manifest: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors


def test_export_cli(tmp_path):
    root, mapping = make_mini(tmp_path)
    out = tmp_path / "manifest"
    args = [f"--corpus={root}", f"--rater_gender={mapping}", f"--out={out}"]
    first = run_export(*args, umask=0o002)
    assert first.returncode == 0, first.stderr
    assert "wrote 5 utterances, 16 ratings and 6 raters" in first.stdout
    # Readable (and writable) by the group, as the umask asks.
    for name in manifest.FILES:
        assert (out / name).stat().st_mode & 0o777 == 0o664, name
    assert "1 left out" in first.stdout
    files = {n: (out / n).read_bytes() for n in manifest.FILES}
    stamps = {n: (out / n).stat().st_mtime_ns for n in manifest.FILES}

    second = run_export(*args)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("export_manifest: ")
    assert "--overwrite" in lines[0] and str(out) in lines[0]
    assert {n: (out / n).read_bytes() for n in manifest.FILES} == files
    assert {n: (out / n).stat().st_mtime_ns for n in manifest.FILES} == stamps

    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"E1": "F", "E2": "M", "E3": "M"}))
    lacking = run_export(
        f"--corpus={root}", f"--rater_gender={partial}", "--overwrite",
        f"--out={out}",
    )  # fmt: skip
    assert lacking.returncode == 1
    lines = error_lines(lacking.stderr)
    assert "E4, E5, E6" in lines[0] and str(partial) in lines[0]


def test_export_cli_default_mapping_and_overwrite(tmp_path):
    root, mapping = make_mini(tmp_path)
    out = tmp_path / "manifest"
    none = run_export(f"--corpus={root}", f"--out={out}")
    assert none.returncode == 1
    (line,) = error_lines(none.stderr)
    assert "--rater_gender" in line and "E1, E2" in line
    assert not out.exists()
    shutil.copy(mapping, root / "rater_gender.json")
    (out / "sub").mkdir(parents=True)
    (out / "utterances.csv").write_text("old\n")
    done = run_export(f"--corpus={root}", f"--out={out}", "--overwrite")
    assert done.returncode == 0, done.stderr
    back = manifest.read(out)
    assert back.rater_attributes["E1"] == {"gender": "F"}


# --- hand-written manifests -------------------------------------------------

UTTERANCES = """\
utterance_id,wav_path,speaker_id,speaker_gender,label,fold
u1,wav/u1.wav,s1,F,neutral,0
u2,wav/u2.wav,s2,M,anger,1
u3,wav/u3.wav,s1,F,,0
"""
RATINGS = """\
utterance_id,rater_id,label
u1,r1,neutral
u1,r2,neutral
u2,r1,anger
u2,r2,sadness
u3,r1,surprise
"""
RATERS = """\
rater_id,rater_gender
r1,F
r2,M
"""


def write_manifest(
    folder: pathlib.Path,
    utterances: str = UTTERANCES,
    ratings: str = RATINGS,
    raters: str = RATERS,
    wavs: tuple[str, ...] | None = None,
) -> pathlib.Path:
    """Writes the three files and a wav for every ``u*`` id listed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wav").mkdir(exist_ok=True)
    for name, text in (
        ("utterances.csv", utterances),
        ("ratings.csv", ratings),
        ("raters.csv", raters),
    ):
        if text is not None:
            data = text.encode() if isinstance(text, str) else text
            (folder / name).write_bytes(data)
    if wavs is None:
        wavs = tuple(f"u{i}" for i in range(1, 40))
    for utt in wavs:
        (folder / "wav" / f"{utt}.wav").write_bytes(b"RIFF")
    return folder


def test_reads_hand_written_manifest(tmp_path):
    folder = write_manifest(tmp_path / "m")
    c = manifest.read(folder)
    assert c.format == "manifest" and c.root == folder
    assert [r.id for r in c.records] == ["u1", "u2", "u3"]
    u1, u2, u3 = c.records
    assert u1.wav_path == folder / "wav" / "u1.wav"
    assert (u1.speaker, u1.label, u1.fold) == ("s1", "neutral", 0)
    assert u1.ratings == {
        "r1": frozenset({"neutral"}),
        "r2": frozenset({"neutral"}),
    }
    assert (u2.speaker, u2.label, u2.fold) == ("s2", "anger", 1)
    assert u3.label is None and u3.ratings == {"r1": frozenset({"surprise"})}
    assert u3.source == f"{folder / 'utterances.csv'}:4"
    assert c.rater_attributes == {"r1": {"gender": "F"}, "r2": {"gender": "M"}}
    assert c.rater_source == str(folder / "raters.csv")
    assert "rater_gender" in c.rater_hint and "raters.csv" in c.rater_hint
    assert c.num_folds == 2


def test_bom_crlf_spaces_blank_lines_quotes_and_absolute_paths(tmp_path):
    plain = manifest.read(write_manifest(tmp_path / "plain"))
    folder = tmp_path / "variant"
    wav = (folder / "wav" / "u2.wav").resolve()
    utterances = UTTERANCES.replace("wav/u2.wav", f'"{wav}"')
    utterances = utterances.replace("u1,wav/u1.wav", " u1 , wav/u1.wav ")
    write_manifest(
        folder,
        b"\xef\xbb\xbf" + utterances.replace("\n", "\r\n").encode(),
        RATINGS.replace("\n", "\r\n") + "\r\n\r\n",
        "\n" + RATERS,
    )
    variant = manifest.read(folder)
    assert variant.records[1].wav_path == wav
    for a, b in zip(plain.records, variant.records, strict=True):
        assert (a.id, a.speaker, a.label, a.fold) == (
            b.id,
            b.speaker,
            b.label,
            b.fold,
        )
        assert a.speaker_attributes == b.speaker_attributes
        assert a.ratings == b.ratings
    assert variant.rater_attributes == plain.rater_attributes


def test_checks_can_be_skipped_with_none(tmp_path):
    utterances = (
        "utterance_id,wav_path,speaker_id,label,notes\n"
        "u1,wav/u1.wav,s1,boredom,anything\n"
        "u2,wav/u2.wav,s2,,\n"
    )
    raters = "rater_id\nr1\nr2\n"
    folder = write_manifest(tmp_path / "m", utterances, raters=raters)
    ratings = "utterance_id,rater_id,label\nu1,r1,boredom\n"
    (folder / "ratings.csv").write_text(ratings)
    c = manifest.read(
        folder,
        classes=None,
        speaker_attribute=None,
        rater_attribute=None,
        num_folds=2,
    )
    assert [r.label for r in c.records] == ["boredom", None]
    assert c.records[0].speaker_attributes == {}
    assert c.rater_attributes == {}


# --- plurality labels --------------------------------------------------------

PLURALITY_UTTERANCES = """\
utterance_id,wav_path,speaker_id,speaker_gender,fold
u1,wav/u1.wav,s1,F,0
u2,wav/u2.wav,s1,F,0
u3,wav/u3.wav,s2,M,1
u4,wav/u4.wav,s2,M,1
u5,wav/u5.wav,s1,F,0
u6,wav/u6.wav,s2,M,1
"""
PLURALITY_RATINGS = """\
utterance_id,rater_id,label
u1,r1,neutral
u1,r2,neutral
u1,r3,anger
u2,r1,anger
u2,r2,sadness
u3,r1,surprise
u3,r2,surprise
u3,r3,neutral
u4,r1,neutral
u4,r1,anger
u4,r2,anger
u5,r1,happiness
u5,r1,happiness
u5,r2,sadness
"""


def test_plurality_labels(tmp_path, caplog):
    raters = "rater_id,rater_gender\nr1,F\nr2,M\nr3,F\n"
    folder = write_manifest(
        tmp_path / "m", PLURALITY_UTTERANCES, PLURALITY_RATINGS, raters
    )
    with caplog.at_level(logging.INFO, logger="fairser_jax.data.manifest"):
        c = manifest.read(folder)
    # Worked out by hand: u1 2 of 3 neutral; u2 a 1-1 tie; u3 surprise is
    # outside the classes; u4 anger 2 (r1 gave two labels) vs neutral 1;
    # u5 r1's repeated row counts once, so a 1-1 tie; u6 has no ratings.
    assert {r.id: r.label for r in c.records} == {
        "u1": "neutral",
        "u2": None,
        "u3": None,
        "u4": "anger",
        "u5": None,
        "u6": None,
    }
    assert c.records[3].ratings["r1"] == frozenset({"neutral", "anger"})
    text = caplog.text
    assert "2 tie(s) (u2, u5)" in text
    assert "1 plurality(ies) outside the classes (u3)" in text
    assert "1 unrated utterance(s) (u6)" in text
    # With surprise among the classes, u3 gets it.
    c = manifest.read(folder, classes=("neutral", "anger", "surprise"))
    assert c.records[2].label == "surprise"


# --- folds -------------------------------------------------------------------


def test_explicit_folds(tmp_path):
    c = manifest.read(write_manifest(tmp_path / "m"))
    assert [r.fold for r in c.records] == [0, 1, 0]


def _session_manifest(
    folder: pathlib.Path, sessions: list[str]
) -> pathlib.Path:
    rows = "".join(
        f"u{i},wav/u{i}.wav,s{i},F,neutral,{s}\n"
        for i, s in enumerate(sessions, start=1)
    )
    header = "utterance_id,wav_path,speaker_id,speaker_gender,label,session\n"
    return write_manifest(
        folder, header + rows, "utterance_id,rater_id,label\n"
    )


@pytest.mark.parametrize(
    "sessions, folds",
    [
        # Numeric order when every session is an integer (2 before 10).
        (["10", "2", "1", "2"], [2, 1, 0, 1]),
        (["Ses03", "Ses01", "Ses02", "Ses01"], [2, 0, 1, 0]),
        # Text order as soon as one is not an integer.
        (["10", "2", "b", "2"], [0, 1, 2, 1]),
    ],
)
def test_folds_by_session(tmp_path, sessions, folds):
    c = manifest.read(_session_manifest(tmp_path / "m", sessions))
    by_id = {r.id: r.fold for r in c.records}
    assert [by_id[f"u{i}"] for i in range(1, len(sessions) + 1)] == folds
    assert c.num_folds == len(set(sessions))


# Speaker -> utterance count, and its folds worked out by hand for 3 folds:
# order s1(4) s2(3) s3(3) s4(2) s5(1) s6(1); sizes [0,0,0] -> s1:0 [4,0,0]
# -> s2:1 [4,3,0] -> s3:2 [4,3,3] -> s4:1 [4,5,3] -> s5:2 [4,5,4]
# -> s6:0 (4 = 4, lowest index) [5,5,4].
SPEAKERS = {"s3": 3, "s5": 1, "s1": 4, "s6": 1, "s2": 3, "s4": 2}
SPEAKER_FOLDS = {"s1": 0, "s2": 1, "s3": 2, "s4": 1, "s5": 2, "s6": 0}


def _speaker_rows(order: list[tuple[str, int]]) -> str:
    rows = []
    n = 0
    for speaker, count in order:
        for _ in range(count):
            n += 1
            rows.append(f"u{n},wav/u{n}.wav,{speaker},F,neutral\n")
    header = "utterance_id,wav_path,speaker_id,speaker_gender,label\n"
    return header + "".join(rows)


def test_folds_by_speaker(tmp_path):
    assert manifest.speaker_folds(SPEAKERS, 3) == SPEAKER_FOLDS
    no_ratings = "utterance_id,rater_id,label\n"
    a = manifest.read(
        write_manifest(
            tmp_path / "a", _speaker_rows(list(SPEAKERS.items())), no_ratings
        ),
        num_folds=3,
    )
    # The same utterances listed in another order get the same folds.
    b = manifest.read(
        write_manifest(
            tmp_path / "b",
            _speaker_rows(sorted(SPEAKERS.items(), reverse=True)),
            no_ratings,
        ),
        num_folds=3,
    )
    for c in (a, b):
        assert len(c.records) == sum(SPEAKERS.values())
        assert {r.speaker: r.fold for r in c.records} == SPEAKER_FOLDS
        folds_of = {}
        for r in c.records:
            folds_of.setdefault(r.speaker, set()).add(r.fold)
        assert all(len(f) == 1 for f in folds_of.values())  # independent
        sizes = [sum(r.fold == k for r in c.records) for k in range(3)]
        assert sizes == [5, 5, 4]
    again = manifest.read(tmp_path / "a", num_folds=3)
    assert [r.fold for r in again.records] == [r.fold for r in a.records]


def test_five_default_folds_need_five_speakers(tmp_path):
    folder = write_manifest(
        tmp_path / "m",
        _speaker_rows([("s1", 2), ("s2", 1)]),
        "utterance_id,rater_id,label\n",
    )
    with pytest.raises(manifest.ManifestError) as err:
        manifest.read(folder)
    message = str(err.value)
    assert f"{folder / 'utterances.csv'}:1: column 'speaker_id'" in message
    assert "2 speaker(s)" in message and "num_folds" in message
    assert len(manifest.read(folder, num_folds=2).records) == 3


# --- attributes of more than two groups --------------------------------------


def test_three_group_attributes(tmp_path):
    utterances = """\
utterance_id,wav_path,speaker_id,speaker_gender,speaker_age_group,label,fold
u1,wav/u1.wav,s1,F,18-30,neutral,0
u2,wav/u2.wav,s2,non-binary,"51+, retired",anger,1
u3,wav/u3.wav,s3,M,31–50,sadness,2
"""
    ratings = """\
utterance_id,rater_id,label
u1,r1,neutral
u1,r2,neutral
u1,r3,anger
u2,r3,anger
"""
    raters = """\
rater_id,rater_region,rater_gender
r1,north,F
r2,Zürich,M
r3,south east,
"""
    folder = write_manifest(tmp_path / "m", utterances, ratings, raters)
    c = manifest.read(
        folder, speaker_attribute="age_group", rater_attribute="region"
    )
    assert [dict(r.speaker_attributes) for r in c.records] == [
        {"age_group": "18-30", "gender": "F"},
        {"age_group": "51+, retired", "gender": "non-binary"},
        {"age_group": "31–50", "gender": "M"},
    ]
    assert c.rater_attributes == {
        "r1": {"gender": "F", "region": "north"},
        "r2": {"gender": "M", "region": "Zürich"},
        "r3": {"region": "south east"},
    }
    assert "rater_region" in c.rater_hint
    # r3 has no gender: fine unless gender is the rater attribute.
    with pytest.raises(manifest.ManifestError, match="raters.csv:4: column"):
        manifest.read(folder, speaker_attribute="age_group")
    # And a written manifest reads back the same.
    manifest.write(c, tmp_path / "copy")
    back = manifest.read(
        tmp_path / "copy", speaker_attribute="age_group", rater_attribute=None
    )
    assert [dict(r.speaker_attributes) for r in back.records] == [
        dict(r.speaker_attributes) for r in c.records
    ]
    assert back.rater_attributes == c.rater_attributes
    assert [dict(r.ratings) for r in back.records] == [
        dict(r.ratings) for r in c.records
    ]


# --- errors ------------------------------------------------------------------

# (file, replace what, with what, read kwargs, line, column, more words)
ERRORS = [
    pytest.param(
        "utterances.csv",
        "speaker_id,",
        "speaker,",
        {},
        1,
        "speaker_id",
        ["found: utterance_id, wav_path, speaker,"],
        id="missing-required-column",
    ),
    pytest.param(
        "ratings.csv",
        "rater_id,label",
        "rater,label",
        {},
        1,
        "rater_id",
        ["found: utterance_id, rater, label"],
        id="missing-ratings-column",
    ),
    pytest.param(
        "utterances.csv",
        "u3,wav/u3.wav,s1,F,,0\n",
        "u3,wav/u3.wav,s1,F,,0\nu1,wav/u1.wav,s1,F,neutral,0\n",
        {},
        5,
        "utterance_id",
        ["'u1' appears again", "first at line 2"],
        id="duplicate-utterance",
    ),
    pytest.param(
        "raters.csv",
        "r2,M\n",
        "r2,M\nr1,M\n",
        {},
        4,
        "rater_id",
        ["'r1' appears again", "first at line 2"],
        id="duplicate-rater",
    ),
    pytest.param(
        "utterances.csv",
        "u3,wav/u3.wav",
        "u3,wav/missing.wav",
        {},
        4,
        "wav_path",
        ["{folder}/wav/missing.wav does not exist", "relative to {folder}"],
        id="missing-wav",
    ),
    pytest.param(
        "utterances.csv",
        "u3,wav/u3.wav,s1,F,",
        "u3,wav/u3.wav,s1,,",
        {},
        4,
        "speaker_gender",
        ["utterance 'u3' has no speaker gender; fill in the cell"],
        id="empty-speaker-attribute",
    ),
    pytest.param(
        "utterances.csv",
        "u2,wav/u2.wav,s2,",
        "u2,wav/u2.wav,,",
        {},
        3,
        "speaker_id",
        ["empty; fill it in"],
        id="empty-speaker-id",
    ),
    pytest.param(
        "utterances.csv",
        "",
        "",
        {"speaker_attribute": "age"},
        1,
        "speaker_age",
        ["attributes present: gender", "--config.data.speaker_attribute"],
        id="no-speaker-attribute-column",
    ),
    pytest.param(
        "ratings.csv",
        "u3,r1,surprise\n",
        "u3,r1,surprise\nu9,r1,neutral\n",
        {},
        7,
        "utterance_id",
        ["'u9' is not in utterances.csv"],
        id="unknown-utterance",
    ),
    pytest.param(
        "ratings.csv",
        "u3,r1,surprise\n",
        "u3,r1,surprise\nu1,r3,neutral\n",
        {},
        7,
        "rater_id",
        ["'r3' is not in {folder}/raters.csv", "add a row"],
        id="unknown-rater",
    ),
    pytest.param(
        "raters.csv",
        "r2,M",
        "r2,",
        {},
        3,
        "rater_gender",
        ["rater 'r2' has no gender", "fill in the cell"],
        id="rater-without-attribute",
    ),
    pytest.param(
        "raters.csv",
        "",
        "",
        {"rater_attribute": "age"},
        1,
        "rater_age",
        ["attributes present: gender", "--config.data.rater_attribute"],
        id="no-rater-attribute-column",
    ),
    pytest.param(
        "ratings.csv",
        "u3,r1,surprise\n",
        "u3,r1,surprise\nu3,r2,\n",
        {},
        7,
        "label",
        ["the label is empty"],
        id="empty-rating-label",
    ),
    pytest.param(
        "utterances.csv",
        "u3,wav/u3.wav,s1,F,,0",
        "u3,wav/u3.wav,s1,F,boredom,0",
        {},
        4,
        "label",
        [
            "'boredom' is not one of the classes",
            "leave the cell empty for utterances outside the study, or add "
            "it to --config.data.classes",
        ],
        id="label-outside-classes",
    ),
    pytest.param(
        "utterances.csv",
        "anger,1",
        "anger,one",
        {},
        3,
        "fold",
        ["'one' is not a fold index", "non-negative integer"],
        id="fold-not-integer",
    ),
    pytest.param(
        "utterances.csv",
        "anger,1",
        "anger,-1",
        {},
        3,
        "fold",
        ["'-1' is not a fold index"],
        id="fold-negative",
    ),
    pytest.param(
        "utterances.csv",
        "anger,1",
        "anger,2",
        {},
        3,
        "fold",
        ["fold 1 has no utterances", "folds used: 0, 2"],
        id="fold-gap",
    ),
    pytest.param(
        "utterances.csv",
        "u3,wav/u3.wav,s1,F,,0",
        "u3,wav/u3.wav,s1,F,,0,extra",
        {},
        4,
        "#7",
        ["7 cells but the header has 6 columns"],
        id="too-many-cells",
    ),
    pytest.param(
        "ratings.csv",
        "u2,r1,anger",
        "u2,r1",
        {},
        4,
        "label",
        ["2 cells but the header has 3 columns"],
        id="too-few-cells",
    ),
    pytest.param(
        "utterances.csv",
        "speaker_gender,label",
        "speaker_gender,speaker_gender",
        {},
        1,
        "speaker_gender",
        ["names this column twice"],
        id="duplicate-column",
    ),
    pytest.param(
        "utterances.csv",
        "u3,wav/u3.wav,s1,F",
        "u3,wav/u3.wav,s1,M",
        {},
        4,
        "speaker_gender",
        ["speaker 's1' has gender 'M' here but 'F' at line 2"],
        id="speaker-with-two-genders",
    ),
]


@pytest.mark.parametrize("name, old, new, kwargs, line, column, words", ERRORS)
def test_errors_name_file_line_and_column(
    tmp_path, name, old, new, kwargs, line, column, words
):
    folder = write_manifest(tmp_path / "m")
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(manifest.ManifestError) as err:
        manifest.read(folder, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: column {column!r}: "), message
    for word in words:
        assert word.format(folder=folder) in message, message
    assert isinstance(err.value, ValueError)


def test_not_utf8_names_line_and_column(tmp_path):
    folder = write_manifest(tmp_path / "m", raters=b"rater_id,rater_gender\n"
                            b"r1,F\nr2,M\xe9\n")  # fmt: skip
    with pytest.raises(manifest.ManifestError) as err:
        manifest.read(folder)
    message = str(err.value)
    assert message.startswith(
        f"{folder / 'raters.csv'}:3: column 'rater_gender': not UTF-8"
    ), message
    assert "save the file as UTF-8" in message


def test_empty_session_cell(tmp_path):
    folder = _session_manifest(tmp_path / "m", ["1", "", "2"])
    with pytest.raises(manifest.ManifestError) as err:
        manifest.read(folder)
    assert str(err.value).startswith(
        f"{folder / 'utterances.csv'}:3: column 'session': "
    )


def test_empty_file(tmp_path):
    folder = write_manifest(tmp_path / "m", raters="")
    with pytest.raises(manifest.ManifestError) as err:
        manifest.read(folder)
    message = str(err.value)
    assert message.startswith(f"{folder / 'raters.csv'}:1: ")
    assert "header row" in message and "rater_id" in message


@pytest.mark.parametrize("name", manifest.FILES)
def test_missing_file(tmp_path, name):
    folder = write_manifest(tmp_path / "m")
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError) as err:
        manifest.read(folder)
    message = str(err.value)
    assert message.startswith(f"{folder / name}: no such file")
    assert "utterances.csv, ratings.csv, raters.csv" in message


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        manifest.read(tmp_path / "nowhere")

r"""Data-stage timings on an IEMOCAP-sized demo corpus, and Table 1.

    python benchmarks/data.py [--num_utterances=10000] [--demo_size=600]

Prints, from one run: the time to generate the corpus (labels + audio), to
read it with ``read_corpus`` (goal: well under 2 s for ~10k utterances in
~150 files), to build S1/S2 and to fingerprint its audio; then the paper's
Table 1 analogue for the default demo size and for the large corpus.
"""

from __future__ import annotations

import pathlib
import shutil
import statistics
import tempfile
import time

from absl import app, flags

from fairser_jax.data import demo_corpus, features, iemocap, study_sets

_NUM = flags.DEFINE_integer("num_utterances", 10_000, "Large corpus size.")
_DEMO = flags.DEFINE_integer("demo_size", 600, "Default demo corpus size.")
_SEED = flags.DEFINE_integer("seed", 0, "Generator seed.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed reads (median shown).")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where to write the corpora (default: a temp dir)."
)
_KEEP = flags.DEFINE_bool(
    "keep", False, "Keep the corpora (else only they are deleted)."
)


def _timed(fn, repeats: int = 1) -> tuple[object, float]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def _table(root: pathlib.Path, title: str) -> None:
    utterances = iemocap.read_corpus(root)
    mapping = iemocap.load_rater_gender(root / "rater_gender.json")
    table = study_sets.build(utterances, mapping).table1()
    print(f"\nTable 1, {title}:")
    print(study_sets.format_table1(table))
    s1, s2 = table["S1"]["n"], table["S2"]["n"]
    print(
        f"S1 = {s1 / len(utterances):.1%} of {len(utterances)} utterances "
        f"(IEMOCAP 73.5%), S2 = {s2 / s1:.1%} of S1 (paper 58.7%), "
        f"S2 groups {table['S2']['per_group']}"
    )


def main(argv: list[str]) -> None:
    del argv
    workdir = pathlib.Path(_WORKDIR.value or tempfile.mkdtemp(prefix="fsj_"))
    large = workdir / f"demo_{_NUM.value}"
    demo = workdir / f"demo_{_DEMO.value}"
    try:
        summary, t_gen = _timed(
            lambda: demo_corpus.generate(
                large,
                num_utterances=_NUM.value,
                seed=_SEED.value,
                overwrite=True,
            )
        )
        n, secs = summary["num_utterances"], summary["total_seconds"]
        print(
            f"generate: {n} utterances, {summary['num_files']} files, "
            f"{secs / 3600:.2f} h of audio in {t_gen:.1f} s "
            f"({n / t_gen:.0f} utterances/s, {secs / t_gen:.0f}x real time)"
        )
        report, t_read = _timed(
            lambda: iemocap.read_corpus_with_report(large), _REPEATS.value
        )
        print(
            f"read_corpus: {len(report.utterances)} utterances from "
            f"{report.num_files} files in {t_read:.3f} s (median of "
            f"{_REPEATS.value}; goal < 2 s), {len(report.missing_wavs)} "
            "missing wavs"
        )
        mapping = iemocap.load_rater_gender(large / "rater_gender.json")
        _, t_build = _timed(
            lambda: study_sets.build(report.utterances, mapping),
            _REPEATS.value,
        )
        print(f"study_sets.build: {t_build:.3f} s")
        size = sum(u.wav_path.stat().st_size for u in report.utterances)
        _, t_fp = _timed(lambda: features.corpus_fingerprint(report.utterances))
        print(
            f"corpus_fingerprint: {t_fp:.2f} s for {size / 2**20:.0f} MiB "
            f"of wav ({size / 2**20 / t_fp:.0f} MiB/s)"
        )
        _, t_demo = _timed(
            lambda: demo_corpus.generate(
                demo,
                num_utterances=_DEMO.value,
                seed=_SEED.value,
                overwrite=True,
            )
        )
        print(f"generate demo ({_DEMO.value} utterances): {t_demo:.1f} s")
        _table(demo, f"default demo corpus ({_DEMO.value} utterances)")
        _table(large, f"large demo corpus ({_NUM.value} utterances)")
        print(
            "\nPaper: S1 7362 (1706 / 1633 / 1099 / 1080 / 1844), "
            "S2 4324 (1323 / 446 / 628 / 628 / 1299)"
        )
    finally:
        if not _KEEP.value:
            shutil.rmtree(large, ignore_errors=True)
            shutil.rmtree(demo, ignore_errors=True)
            if _WORKDIR.value is None:
                workdir.rmdir()


if __name__ == "__main__":
    app.run(main)

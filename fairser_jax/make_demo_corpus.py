r"""Writes the built-in demo corpus in the IEMOCAP layout.

    python -m fairser_jax.make_demo_corpus --out=/tmp/demo_corpus \
        --num_utterances=600 --seed=0 [--rater_cue=tempo]

Then prints what it wrote and the corpus's Table 1 (S1/S2 per class), read
back through the same reader and study-set code the pipeline uses.
"""

from __future__ import annotations

import json
import sys
import time

from absl import app, flags

from fairser_jax.data import demo_corpus, iemocap, study_sets

_OUT = flags.DEFINE_string("out", None, "Corpus root to create.")
_NUM = flags.DEFINE_integer(
    "num_utterances",
    600,
    "Number of utterances (>= 10; IEMOCAP has ~10k).",
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed; equal seeds, equal files.")
_MEAN_DURATION = flags.DEFINE_float(
    "mean_duration",
    None,
    "Mean utterance length in seconds (default grows with the size: "
    "0.8 s up to 200 utterances, 1.5 s at 10k).",
)
_RATER_CUE = flags.DEFINE_enum(
    "rater_cue",
    "none",
    list(demo_corpus.RATER_CUES),
    "Rater-side bias beyond the latent emotion: none, or tempo (a speaking "
    "rate independent of speaker gender that male raters hear as anger "
    "when fast, female raters as sadness when slow; docs/DESIGN.md, Data).",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace an earlier demo corpus at --out."
)
flags.mark_flag_as_required("out")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    start = time.perf_counter()
    try:
        summary = demo_corpus.generate(
            _OUT.value,
            num_utterances=_NUM.value,
            seed=_SEED.value,
            mean_duration=_MEAN_DURATION.value,
            overwrite=_OVERWRITE.value,
            rater_cue=_RATER_CUE.value,
        )
    except ValueError as err:
        sys.exit(f"make_demo_corpus: {err}")
    elapsed = time.perf_counter() - start
    # Per-utterance entries (latent emotion, cue) stay in demo_corpus.json.
    shown = {
        k: v
        for k, v in summary.items()
        if k not in ("latent", "tempo_cue", "cue_driven")
    }
    print(json.dumps(shown, indent=2))
    print(
        f"wrote {summary['num_utterances']} utterances "
        f"({summary['total_seconds']:.0f} s of audio) in "
        f"{summary['num_files']} EmoEvaluation files in {elapsed:.1f} s"
    )
    utterances = iemocap.read_corpus(summary["root"])
    rater_gender = iemocap.load_rater_gender(
        f"{summary['root']}/rater_gender.json"
    )
    sets = study_sets.build(utterances, rater_gender)
    print(study_sets.format_table1(sets.table1()))


if __name__ == "__main__":
    app.run(main)

"""The paper's published numbers, as lookups that may return nothing.

Chien, Upadhyay & Lee, ICASSP 2024. Table 1 (the study sets' sizes) is
here; the per-variant numbers of Tables 2 and 3 are part of each variant's
declaration (`fairser_jax.variants.Variant.paper`) and read through
:func:`value`. Every lookup returns None for a set, class, variant or
metric the paper has no number for, so a corpus with its own classes or a
variant of one's own gets "—" in the paper's columns, never an error.
"""

from __future__ import annotations

from typing import Any

from fairser_jax import variants as variants_lib

CITATION = (
    'Chien, Upadhyay & Lee, "Balancing Speaker-Rater Fairness for '
    'Gender-Neutral Speech Emotion Recognition", ICASSP 2024'
)

# Transcribed from the paper's Table 1, used only as a reference next to
# ours.
TABLE1: dict[str, dict[str, Any]] = {
    "S1": {
        "n": 7362,
        "per_class": {
            "neutral": 1706,
            "happiness": 1633,
            "anger": 1099,
            "sadness": 1080,
            "frustration": 1844,
        },
    },
    "S2": {
        "n": 4324,
        "per_class": {
            "neutral": 1323,
            "happiness": 446,
            "anger": 628,
            "sadness": 628,
            "frustration": 1299,
        },
    },
}


def table1_size(study_set: str) -> int | None:
    """Utterances of the paper's S1 or S2 (Table 1), None for another set."""
    return TABLE1.get(study_set, {}).get("n")


def table1_count(study_set: str, emotion: str) -> int | None:
    """The paper's count of `emotion` in S1 or S2 (Table 1), or None."""
    return TABLE1.get(study_set, {}).get("per_class", {}).get(emotion)


def value(variant: str, emotion: str, metric: str) -> Any:
    """The paper's Table 2 / Table 3 number of a cell, or None."""
    return variants_lib.paper_value(variant, emotion, metric)

"""Names shared by every stage of the pipeline."""

# The five binary emotion detectors of the paper (Table 1), in paper order.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "anger",
    "sadness",
    "frustration",
)

# Integer coding of a gender group wherever one enters an array: speaker
# gender (S1) and rater-gender group (S2). Unknown group = masked out.
GENDER_CODE: dict[str, int] = {"F": 0, "M": 1}


def in_paper_order(names) -> list[str]:
    """Distinct `names` with the paper's emotions first, in `EMOTIONS` order,
    then any other class (a manifest corpus's) in order of appearance."""
    names = list(dict.fromkeys(names))
    return [e for e in EMOTIONS if e in names] + [
        n for n in names if n not in EMOTIONS
    ]

"""The fold and consensus-label rules every corpus layout shares."""

import numpy as np

from fairser_jax.data import manifest, policies


def test_session_folds_sort_numbers_as_numbers():
    assert policies.session_folds(["10", "2", "1", "2"]) == {
        "1": 0,
        "2": 1,
        "10": 2,
    }
    assert policies.session_folds(["b", "a", "10"]) == {"10": 0, "a": 1, "b": 2}


def test_plurality_against_a_plain_loop(rng):
    classes = ("anger", "sadness", "neutral")
    words = (*classes, "other")
    for _ in range(500):
        ratings = {
            f"E{r}": set(rng.choice(words, size=rng.integers(1, 3)))
            for r in range(rng.integers(0, 5))
        }
        counts = {}
        for given in ratings.values():
            for w in given:
                counts[w] = counts.get(w, 0) + 1
        if not counts:
            want = (None, "unrated")
        else:
            top = max(counts.values())
            best = [w for w, c in counts.items() if c == top]
            if len(best) > 1:
                want = (None, "tie")
            elif best[0] not in classes:
                want = (None, "outside")
            else:
                want = (best[0], "label")
        assert policies.plurality_label(ratings, classes) == want, ratings
        if want[1] == "outside":
            assert policies.plurality_label(ratings, None) == (best[0], "label")


def test_speaker_folds_balance_and_keep_speakers_whole():
    counts = {f"s{i}": int(n) for i, n in enumerate(np.arange(1, 12))}
    folds = policies.speaker_folds(counts, 3)
    assert set(folds) == set(counts) and set(folds.values()) == {0, 1, 2}
    sizes = [sum(counts[s] for s in folds if folds[s] == k) for k in range(3)]
    assert max(sizes) - min(sizes) <= max(counts.values())
    assert manifest.speaker_folds is policies.speaker_folds  # its old place

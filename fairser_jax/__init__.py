"""fairser_jax: balancing speaker-rater fairness for gender-neutral SER.

A JAX/Flax reimplementation of Chien, Upadhyay & Lee, "Balancing
Speaker-Rater Fairness for Gender-Neutral Speech Emotion Recognition",
ICASSP 2024.
"""

__version__ = "0.1.0"

"""wav2vec 2.0 in Flax: the model, HF checkpoint loading, extraction.

``model`` holds the network for both HF checkpoint families ("base":
group-norm feature encoder, post-LN; "stable": layer-norm encoder, pre-LN),
``weights`` converts HF checkpoints.
"""

from fairser_jax.wav2vec2.model import (
    Wav2Vec2Config,
    Wav2Vec2Model,
    Wav2Vec2Output,
    feature_lengths,
    min_input_length,
)
from fairser_jax.wav2vec2.weights import (
    BUILTIN_CHECKPOINTS,
    DEFAULT_PREPROCESSOR,
    LoadedCheckpoint,
    load,
    random_checkpoint,
)

__all__ = [
    "BUILTIN_CHECKPOINTS",
    "DEFAULT_PREPROCESSOR",
    "LoadedCheckpoint",
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "Wav2Vec2Output",
    "feature_lengths",
    "load",
    "min_input_length",
    "random_checkpoint",
]

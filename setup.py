"""fairser_jax: speaker-rater fairness for gender-neutral SER, in JAX."""

import setuptools

setuptools.setup(
    name="fairser_jax",
    version="0.1.0",
    description=(
        "JAX/Flax reimplementation of 'Balancing Speaker-Rater Fairness for "
        "Gender-Neutral Speech Emotion Recognition' (ICASSP 2024)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["fairser_jax", "fairser_jax.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.8.5",
        "optax>=0.2.2",
        "ott-jax==0.6.*",  # gradient workaround verified on 0.6.0
        "chex>=0.1.86",
        "absl-py>=2.0",
        "ml-collections>=0.1.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "transformers>=4.40",
        "safetensors>=0.4",
        "huggingface_hub>=0.23",
        "soundfile>=0.12",
        "matplotlib>=3.7",
        "scikit-learn>=1.3",
        "tqdm>=4.66",
        "orbax-checkpoint>=0.5",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "fairlearn>=0.10",
            "pot>=0.9",
            "scikit-learn>=1.3",
            "torch==2.13.0",
            "jupytext>=1.16",
            "nbclient>=0.10",
            "ipykernel>=6.29",
            "ruff>=0.4",
        ],
        # Open the notebooks: `jupyter lab notebooks/` (the .ipynb files
        # carry their outputs; jupytext pairs them with the .py sources).
        "notebooks": [
            "jupyterlab>=4",
            "ipykernel>=6.29",
            "ipywidgets>=8",
            "jupytext>=1.16",
        ],
    },
)

"""Where the project's own files are: the checkout's root and the data shipped in it."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RELATIONS_DIR = PROJECT_ROOT / "data" / "relations"
PYTHIA_TOKENIZER_DIR = PROJECT_ROOT / "data" / "tokenizers" / "gpt-neox-20b"
PUBLISHED_FIGURE_CSV = PROJECT_ROOT / "data" / "examples" / "pythia-6.9b-figure.csv"

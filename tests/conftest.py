"""Shared fixtures: a tiny Pythia-shaped checkpoint with planted heads, built once per session.

`planted_checkpoint.path` is a folder (save_pretrained layout, safetensors, byte-level BPE
tokenizer trained on the relation words) of the 3-layer, 4-head, d_model 64 GPT-NeoX model of
`lib.fixtures.planted`: seeded random weights, except four heads whose answer is known by
construction (`PLANTED`: copying, suppression, country -> capital, previous token; how each is
planted is written in `lib.fixtures.planted`). Every other head is random and labelled
`unclassified`.

Fixtures: `planted_checkpoint` (`Planted`: path, heads, `where(label)`), `planted_model`
(loaded on CPU, float32), `planted_classification` (its `classify_heads` result),
`non_neox_folder` (a GPT-2 config), `pythia_14m_folder` (a random checkpoint of Pythia-14m's
shape, 50304 embedding rows); `planted_series`, `planted_store`, `task_series`,
`ablation_store` (`series_support`).

`mapping_checkpoint` is a second checkpoint of the same shape, random but for one head
(`MAPPING_HEAD`) planted for a relation no bundled dataset has (`PlantedMapping.pairs`: 40
single-token words mapped to 40 others). Dims 32-47 of each source's input embedding hold a
unit code (scaled like the random dims); the same dims of each target's output embedding hold
its source's code, and are 0 for every other token; the head reads and writes those dims. So a
source's row is 0 except at the targets, where it is the codes' cosine: largest (1) at its own
target, and a target's row (the reversed pairs) never puts a source, at 0, in its top 10.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from lib.checkpoints.loader import LoadedModel, load_model
from lib.fixtures.planted import (
    D_HEAD,
    D_MODEL,
    N_HEADS,
    N_LAYERS,
    PLANTED,
    build_planted,
    plant_ov,
)
from lib.fixtures.synthetic import (
    build_checkpoint,
    pythia_config,
    random_model,
    relation_words,
    save_checkpoint,
    train_tokenizer,
)
from lib.scoring.pipeline import Classification, ClassifySettings, classify_heads
from lib.scoring.relations import single_token

if importlib.util.find_spec("playwright") is not None:  # the GPU machine's image has none
    from tests.browser_support import browser, page, server_url  # noqa: F401 (browser fixtures)
from tests.series_support import (  # noqa: F401 (sweep fixtures)
    ablation_store,
    planted_series,
    planted_store,
    task_series,
)

MAPPING_DIMS = slice(2 * D_HEAD, 3 * D_HEAD)
MAPPING_HEAD = (0, 2)
MAPPING_NAME = "planted_mapping"


@dataclass(frozen=True)
class Planted:
    """The planted checkpoint folder and its planted heads: (layer, head) -> expected label."""

    path: Path
    heads: dict[tuple[int, int], str]

    def where(self, label: str) -> tuple[int, int]:
        """(layer, head) of the planted head labelled `label`."""
        (position,) = (position for position, name in self.heads.items() if name == label)
        return position


@pytest.fixture(scope="session", autouse=True)
def hub_offline() -> Iterator[None]:
    """Tests never reach the hub: offline mode, as `HF_HUB_OFFLINE=1` (also for the servers
    the browser tests start), so `lib.checkpoints.hub` never probes the network either."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="session")
def planted_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """Folder of the tiny checkpoint with planted heads (module docstring)."""
    path = build_planted(tmp_path_factory.mktemp("planted"), train_tokenizer())
    return Planted(path, dict(PLANTED))


@dataclass(frozen=True)
class PlantedMapping:
    """The mapping checkpoint's folder, its planted `head` and the relation's word `pairs`."""

    path: Path
    head: tuple[int, int]
    pairs: tuple[tuple[str, str], ...]

    def csv(self, pairs: tuple[tuple[str, str], ...] | None = None) -> bytes:
        """A relation file (`src,dst` CSV) of `pairs`, by default the planted ones."""
        rows = pairs if pairs is not None else self.pairs
        return ("src,dst\n" + "".join(f"{src},{dst}\n" for src, dst in rows)).encode()

    def reversed(self) -> tuple[tuple[str, str], ...]:
        return tuple((dst, src) for src, dst in self.pairs)


def mapping_pairs(tokenizer, n_pairs: int = 40) -> tuple[tuple[str, str], ...]:
    """`n_pairs` made-up pairs of distinct single-token words (sources and targets disjoint)."""
    words = [word.strip() for word in relation_words()]
    single = [w for w in dict.fromkeys(words) if single_token(tokenizer, w) is not None]
    sources, targets = single[1000 : 1000 + n_pairs], single[2000 : 2000 + n_pairs]
    return tuple((src, targets[(7 * i) % n_pairs]) for i, src in enumerate(sources))


def plant_mapping(model, tokenizer, pairs, generator: torch.Generator) -> None:
    embed_in = model.get_input_embeddings().weight
    embed_out = model.get_output_embeddings().weight
    codes = torch.randn(len(pairs), D_HEAD, generator=generator)
    codes /= codes.norm(dim=1, keepdim=True)
    embed_out[:, MAPPING_DIMS] = 0
    for (src, dst), code in zip(pairs, codes, strict=True):
        embed_in[single_token(tokenizer, src), MAPPING_DIMS] = 0.05 * code
        embed_out[single_token(tokenizer, dst), MAPPING_DIMS] = 0.05 * code
    read_codes = torch.zeros(D_HEAD, D_MODEL)
    read_codes[:, MAPPING_DIMS] = torch.eye(D_HEAD)
    plant_ov(model, *MAPPING_HEAD, read_codes, MAPPING_DIMS, 1.0)


@pytest.fixture(scope="session")
def mapping_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> PlantedMapping:
    """Folder of the checkpoint with a head planted for a made-up relation (module docstring)."""
    tokenizer = train_tokenizer()
    model = random_model(pythia_config(N_LAYERS, N_HEADS, D_MODEL, len(tokenizer)), seed=2)
    pairs = mapping_pairs(tokenizer)
    with torch.no_grad():
        plant_mapping(model, tokenizer, pairs, torch.Generator().manual_seed(3))
    path = save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("mapping"))
    return PlantedMapping(path, MAPPING_HEAD, pairs)


@pytest.fixture(scope="session")
def planted_model(planted_checkpoint: Planted) -> LoadedModel:
    """The planted checkpoint loaded through the real loader on CPU in float32."""
    return load_model(str(planted_checkpoint.path), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def planted_classification(planted_model: LoadedModel) -> Classification:
    """`classify_heads` of the planted model with default settings (all relations, patterns)."""
    return classify_heads(planted_model, ClassifySettings())


@pytest.fixture(scope="session")
def non_neox_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that looks like a checkpoint but whose config says GPT-2."""
    path = tmp_path_factory.mktemp("gpt2")
    (path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.fixture(scope="session")
def pythia_14m_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random checkpoint of Pythia-14m's shape (6 x 4 heads, d_model 128, 50304 rows)."""
    return build_checkpoint(tmp_path_factory.mktemp("pythia-14m"), size="14m")


# A copying relation (k = 1) and a k = 10 one keep runs on 50304-wide rows to seconds.
FEW_RELATIONS = ("name_copying", "work_location")


def upcast_copy(loaded: LoadedModel) -> LoadedModel:
    """The float32 reference of a loaded model: the same weights, upcast once (exactly)."""
    model = copy.deepcopy(loaded.model).float()
    return dataclasses.replace(loaded, model=model, dtype=torch.float32)

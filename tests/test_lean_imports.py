"""The static scoring path imports only what it runs: importing `lib.classify`, and a streamed
run without patterns, leave transformers' modeling code (the GPT-NeoX model, the model loader
with its kernel and distributed machinery, the causal mask and torch's compiler under it)
unimported; a run with patterns imports what it needs. The first MLP built without
transformers' modeling code computes exactly what `GPTNeoXMLP` computes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from transformers import GPTNeoXConfig
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXMLP

from lib.core.paths import PROJECT_ROOT
from lib.scoring.weights_view import first_mlp_module
from tests.conftest import FEW_RELATIONS, Planted

MODELING = (
    "transformers.models.gpt_neox.modeling_gpt_neox",
    "transformers.modeling_utils",
    "transformers.activations",
    "transformers.masking_utils",
    "transformers.generation.utils",
    "torch._dynamo",
)
"""Modules a forward pass or a whole-model load needs, and static scores do not: together
about 2 s of the 14m command's import time (`python -X importtime -c "import lib.classify"`)."""

# Run in a fresh interpreter: this test process has imported all of them already.
SCRIPT = """
import json, sys
import lib.classify

MODELING = {modeling!r}

def loaded():
    return sorted(name for name in MODELING if name in sys.modules)

folder, out, relations = sys.argv[1:]
common = ["--model", folder, "--device", "cpu", "--relations", relations]
seen = {{"import": loaded()}}
assert lib.classify.main([*common, "--no-patterns", "--out", out + "/static.csv"]) == 0
seen["static"] = loaded()
assert lib.classify.main([*common, "--out", out + "/patterns.csv"]) == 0
seen["patterns"] = loaded()
print(json.dumps(seen))
"""


def test_static_scores_import_no_modeling_code(planted_checkpoint: Planted, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT.format(modeling=MODELING),
            str(planted_checkpoint.path),
            str(tmp_path),
            ",".join(FEW_RELATIONS),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["import"] == []
    assert seen["static"] == []
    # The names are real: the pattern pass runs transformers' own layers and mask.
    assert "transformers.models.gpt_neox.modeling_gpt_neox" in seen["patterns"]
    assert "transformers.masking_utils" in seen["patterns"]


def test_the_first_mlp_computes_what_gpt_neox_mlp_computes() -> None:
    config = GPTNeoXConfig(
        hidden_size=32, num_attention_heads=4, intermediate_size=128, hidden_act="gelu"
    )
    torch.manual_seed(0)
    reference = GPTNeoXMLP(config).eval()
    mlp = first_mlp_module(config)
    mlp.load_state_dict(reference.state_dict(), strict=True)
    inputs = torch.randn(64, 32) * 3
    with torch.no_grad():
        assert torch.equal(mlp(inputs), reference(inputs))


def test_another_activation_is_transformers_own_mlp() -> None:
    config = GPTNeoXConfig(
        hidden_size=32, num_attention_heads=4, intermediate_size=128, hidden_act="gelu_new"
    )
    assert isinstance(first_mlp_module(config), GPTNeoXMLP)

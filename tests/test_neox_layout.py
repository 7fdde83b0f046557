"""The GPT-NeoX fused q/k/v layout as `lib.checkpoints.neox` decodes it, checked against
transformers' own forward pass of a random GPT-NeoX layer."""

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from lib.checkpoints.neox import (
    KEY,
    QUERY,
    VALUE,
    dense_columns,
    output_weights,
    qkv_rows,
    split_heads,
    value_weights,
)

N_HEADS, D_MODEL = 4, 32


def tiny_model() -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=64,
        hidden_size=D_MODEL,
        num_hidden_layers=1,
        num_attention_heads=N_HEADS,
        intermediate_size=4 * D_MODEL,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(config).eval()


def test_value_rows_and_weights_are_what_the_layer_computes() -> None:
    model = tiny_model()
    attention = model.gpt_neox.layers[0].attention
    captured = {}
    attention.query_key_value.register_forward_hook(
        lambda module, args, out: captured.update(x=args[0], qkv=out)
    )
    with torch.no_grad():
        model(torch.arange(6)[None])
    x, qkv = captured["x"], captured["qkv"]
    weight, bias = attention.query_key_value.weight, attention.query_key_value.bias
    per_head = split_heads(qkv, N_HEADS)
    d_head = D_MODEL // N_HEADS
    for head in range(N_HEADS):
        for part in (QUERY, KEY, VALUE):
            rows = qkv_rows(head, part, d_head)
            expected = x @ weight[rows].T + bias[rows]
            torch.testing.assert_close(per_head[..., head, part, :], expected)
        torch.testing.assert_close(
            value_weights(weight, N_HEADS)[head], weight[qkv_rows(head, VALUE, d_head)]
        )


def test_output_weights_are_the_columns_dense_reads_per_head() -> None:
    model = tiny_model()
    dense = model.gpt_neox.layers[0].attention.dense.weight
    d_head = D_MODEL // N_HEADS
    z = torch.randn(N_HEADS, d_head)
    # dense applied to the concatenated head outputs = sum over heads of W_O(h) z_h
    whole = dense @ z.reshape(-1)
    per_head = sum(output_weights(dense, N_HEADS)[h] @ z[h] for h in range(N_HEADS))
    torch.testing.assert_close(whole, per_head)
    for head in range(N_HEADS):
        torch.testing.assert_close(
            output_weights(dense, N_HEADS)[head], dense[:, dense_columns(head, d_head)]
        )

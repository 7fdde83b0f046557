"""The benchmark command end to end on a tiny shape: the code path the GPU run takes (model
drawn in memory on the device, every measurement, the report), here on the CPU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench.dynamic import main as dynamic_main
from bench.run import build_parser, main, model_specs
from lib.core.errors import InputError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["--shape", "2,4,64", "--repeats", "1", "--build", "memory", "--out", str(out)]
    assert main(argv) == 0  # 1 would mean engine and reference disagree
    return out


def test_the_report_compares_engine_floor_and_both_loops_side_by_side(report):
    (json_path,) = report.glob("cpu-*.json")
    result = json.loads(json_path.read_text())
    assert result["machine"]["device"] == "cpu" and result["repeats"] == 1
    rates = result["rates"]
    assert rates["matmul_flops_per_s 16x50277"] > 0 and rates["copy_bytes_per_s"] > 0
    (row,) = result["results"]
    ops, patterns = row["operations"], row["patterns"]
    assert row["shape"] == [2, 4, 64] and row["dtype"] == "float32"
    assert ops["heads"] == 8 and ops["relations"] == 15  # Pythia's tokenizer keeps 15 of 20
    assert len(ops["skipped_relations"]) == 5
    assert set(ops["loops"]) == {"left_to_right", "vo_first"}
    for loop in ops["loops"].values():
        assert loop["identical"] and loop["speedup"] > 0
    floor = ops["floor"]
    # 2 layers x 4 heads x every distinct source x 50277 vocabulary rows, inner dimension 16.
    assert floor["n_logits"] == 2 * 4 * ops["sources"] * 50277 and floor["d_head"] == 16
    assert floor["seconds"] == floor["compute_s"] + floor["memory_s"] > 0
    assert ops["engine_over_floor"] == ops["engine"]["median"] / floor["seconds"]
    assert ops["engine_peak_extra_bytes"] > 0 and ops["engine_peak_extra_bytes_one_relation"] > 0
    assert ops["flops_per_s"] > 0 and ops["fraction_of_peak"] is None  # no known peak on CPU
    assert patterns["loop"]["max_abs_diff"] < 1e-6 and patterns["settings"]["batch"] > 0


def test_the_markdown_table_has_one_line_per_score_kind(report):
    text = (report / "latest-cpu.md").read_text()
    assert text == next(report.glob("cpu-*.md")).read_text()
    assert "Measured float32 rates: logits matmul (d_head×V) 16x50277 " in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2  # header, rule, operations, patterns
    assert "left to right: identical; OV first: identical" in table[2]
    assert "1 relation" in table[2]
    assert "patterns: 8 prompts × 64 tokens" in table[3]


def test_a_loop_over_budget_is_estimated_not_run(tmp_path):
    argv = ["--shape", "1,2,16", "--repeats", "1", "--build", "memory"]
    assert main([*argv, "--reference-max-seconds", "0", "--out", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("cpu-*.json")
    row = json.loads(json_path.read_text())["results"][0]
    for loop in [*row["operations"]["loops"].values(), row["patterns"]["loop"]]:
        assert loop["time"] is None and loop["estimate_s"] > 0
    assert "skipped (est." in (tmp_path / "latest-cpu.md").read_text()


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(InputError, match="not both"):
        main(["--sizes", "14m", "--shape", "2,4,64"])
    with pytest.raises(InputError, match="unknown Pythia size"):
        main(["--sizes", "3m"])


def test_the_gpu_check_runs_the_gpu_tests_then_the_cuda_bench_of_the_large_shapes():
    printed = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_check.sh"), "--print-commands"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    tests, bench = printed
    assert tests.startswith("python3 -m pytest -m gpu")  # the device image's interpreter
    assert bench.startswith("python3 -m bench.run ")
    args = build_parser().parse_args(bench.split()[3:])  # the options bench.run parses
    specs = model_specs(args.device, args.sizes, args.shape, None, args.dtypes, "memory")
    assert args.device == "cuda" and args.repeats >= 1
    assert [(s.name, s.dtype) for s in specs] == [
        (size, "bfloat16") for size in ("1.4b", "6.9b", "12b")
    ]


def test_the_dynamic_bench_times_all_heads_and_relations(tmp_path):
    assert dynamic_main(["--shape", "1,2,16", "--out", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("dynamic-cpu-*.json")
    (row,) = json.loads(json_path.read_text())["results"]
    assert row["heads"] == 2 and row["relations"] == 15 and row["templates"] == 4
    assert row["prompts"] == 4 * row["distinct_sources"] > 0
    assert row["dynamic_s"] > 0 and row["static_s"] > 0
    (md_path,) = tmp_path.glob("dynamic-cpu-*.md")
    assert "| 1x2x16 (1×2, d 16, V 50277) | 15 |" in md_path.read_text()

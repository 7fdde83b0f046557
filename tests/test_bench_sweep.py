"""`python -m bench.sweep` end to end on a tiny shape: every job stored, the report written."""

from __future__ import annotations

import json

from bench.sweep import main


def test_the_sweep_bench_reports_throughput_and_memory_after_each_job(tmp_path) -> None:
    argv = ["--shape", "2,4,64", "--jobs", "2", "--relations", "general_copying_english_500"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("sweep-cpu-*.json")
    report = json.loads(path.read_text())
    assert report["jobs"] == 2 and not report["failed"] and report["jobs_per_hour"] > 0
    assert len(report["rss_after_each_job_mib"]) == 2
    assert report["peak_rss_after_last_mib"] >= report["peak_rss_after_first_mib"] > 0

"""Sweep throughput and memory across jobs: `python -m bench.sweep`.

A series of `--jobs` step folders of one Pythia-shaped checkpoint with seeded random weights
(`lib.synthetic`; built once in a child process, then every `step<N>` links to it, so nothing
is downloaded and the loads read the same files) is swept in this process by `lib.sweep`,
into a fresh store. Reported:

- throughput: jobs per hour, wall time of the sweep alone (series building excluded);
- this process's peak RSS (`ru_maxrss`) after the first job and after the last, and its RSS
  after each job: no growth across jobs means each model is released before the next load;
- on CUDA, `torch.cuda.max_memory_allocated` after the first and the last job.

    python -m bench.sweep                                # 14m shape, 20 jobs, CPU
    python -m bench.sweep --shape 2,4,64 --jobs 3        # tiny, seconds
    python -m bench.sweep --size 160m --device cuda      # on a GPU
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil
import torch

from bench.measure import machine
from lib.core.errors import CliParser, run_cli
from lib.runs.sweep import JobResult, SweepSettings, plan_jobs, sweep
from lib.scoring.pipeline import ClassifySettings
from lib.scoring.relations import parse_relations

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 2**20


def build_series(folder: Path, jobs: int, size: str | None, shape: str | None) -> Path:
    """`folder/step0 ... step<jobs-1>`, each a link to one checkpoint built in a child process
    (so this process's peak memory is the sweep's own)."""
    checkpoint = folder / "checkpoint"
    which = ["--size", size] if size else ["--shape", shape or ""]
    command = [sys.executable, "-m", "lib.synthetic", *which, "--out", str(checkpoint)]
    subprocess.run(command, check=True, capture_output=True)
    series = folder / "series"
    series.mkdir()
    for step in range(jobs):
        (series / f"step{step}").symlink_to(checkpoint, target_is_directory=True)
    return series


def peak_rss() -> int:
    """This process's peak resident memory so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = CliParser(prog="python -m bench.sweep", description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--size", help="catalog size of the checkpoint (default 14m)")
    which.add_argument("--shape", help="LAYERS,HEADS,D_MODEL instead, e.g. 2,4,64")
    parser.add_argument("--jobs", type=int, default=20, help="checkpoints swept (default 20)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--relations", default="all", help="all or a,b,...")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the report")
    args = parser.parse_args(argv)
    size = args.size or (None if args.shape else "14m")
    settings = SweepSettings(ClassifySettings(relations=parse_relations(args.relations)))
    settings = SweepSettings(settings.classify, args.device, "float32")
    process = psutil.Process()
    after: list[dict[str, float]] = []

    def measure(result: JobResult) -> None:
        record = {"seconds": result.seconds, "rss": process.memory_info().rss, "peak": peak_rss()}
        if args.device == "cuda":
            record["cuda_peak"] = torch.cuda.max_memory_allocated()
        after.append(record)
        print(f"job {len(after)}: {result.status} {result.seconds:.1f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        series = build_series(Path(folder), args.jobs, size, args.shape)
        jobs = plan_jobs([str(series)])
        start = time.perf_counter()
        results = sweep(jobs, settings, str(Path(folder) / "store"), report=measure)
        wall = time.perf_counter() - start
    failed = [r.error for r in results if r.status != "stored"]
    report = {
        "machine": machine(torch.device(args.device)),
        "checkpoint": size or f"shape {args.shape}",
        "jobs": len(results),
        "failed": failed,
        "wall_seconds": wall,
        "jobs_per_hour": 3600 * len(results) / wall,
        "median_job_seconds": statistics.median(r["seconds"] for r in after),
        "peak_rss_after_first_mib": after[0]["peak"] / MIB,
        "peak_rss_after_last_mib": after[-1]["peak"] / MIB,
        "rss_after_each_job_mib": [round(r["rss"] / MIB, 1) for r in after],
        "cuda_peak_after_first_mib": after[0].get("cuda_peak", 0) / MIB or None,
        "cuda_peak_after_last_mib": after[-1].get("cuda_peak", 0) / MIB or None,
        "relations": args.relations,
    }
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"sweep-{args.device}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    line = (
        f"{report['checkpoint']} on {args.device}: {len(results)} jobs, "
        f"{report['jobs_per_hour']:.0f} jobs/hour "
        f"(median job {report['median_job_seconds']:.2f} s); "
        f"peak RSS after job 1: {report['peak_rss_after_first_mib']:.0f} MiB, after job "
        f"{len(results)}: {report['peak_rss_after_last_mib']:.0f} MiB"
    )
    print(line)
    print(f"wrote {path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

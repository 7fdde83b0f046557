"""Run one command and print its peak RSS and wall time as one JSON line (stdout, last line).

    python -m bench.peak_rss OUTPUT_FILE -- COMMAND [ARGS...]

A small wrapper so that each measured command is the only child of a lean process: the kernel's
high-water mark (`ru_maxrss`) of a child starts from its parent's RSS when the child is forked
before it runs its own program, so a parent that imported torch would leave its own footprint
in every child's peak. This module imports only the standard library (~10 MiB). The command's
stdout and stderr go to OUTPUT_FILE. Printed: `peak_rss_bytes` (the child's `ru_maxrss`, from
`os.wait4`, which reports that child alone), `seconds` (from start to exit) and `returncode`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    with open(argv[0], "wb") as output:
        start = time.perf_counter()
        child = subprocess.Popen(argv[2:], stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # waited here, not by Popen
    result = {
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "seconds": seconds,
        "returncode": child.returncode,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

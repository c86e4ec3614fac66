"""Start one command and report its own wall time and peak memory.

    python -S bench/launch.py RESULT_FILE COMMAND [ARG...]

Linux carries a process's peak RSS across ``exec``, and a child spawned from the (large)
benchmark process would start its count from the parent's size. This launcher is small (no site,
no subprocess module): the command it spawns reports, through ``wait4``, a peak that is its own.
Writes ``{"seconds": ..., "maxrss_kib": ...}`` to RESULT_FILE; exits with the command's status.
"""

import json
import os
import sys
import time

result_file, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - start
with open(result_file, "w") as handle:
    json.dump({"seconds": elapsed, "maxrss_kib": usage.ru_maxrss}, handle)
sys.exit(os.waitstatus_to_exitcode(status))

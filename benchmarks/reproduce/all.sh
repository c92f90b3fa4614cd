#!/usr/bin/env bash
# Every reproduction, one after another, in one store (.reproduce-store/SIZE): docs/results.md's numbers.
# Resumable: a finished run is never run again, so an interrupted all.sh picks up where it stopped.
#   bash benchmarks/reproduce/all.sh                # tiny, seeds 0 1 (CPU)
#   bash benchmarks/reproduce/all.sh --size small   # any arguments go to every study
# Run studies one at a time: two trainings sharing 2 cores are slower than one after the other
# (or set OMP_NUM_THREADS=1 for each when running them side by side).
set -euo pipefail
cd "$(dirname "$0")/../.."
for study in 01_replay 02_schedules 03_path_switching 04_reuse 05_soups 06_sweep; do
    started=$(date +%s)
    python "benchmarks/reproduce/$study.py" "$@"
    echo "== $study: $(( $(date +%s) - started )) s"
done

#!/usr/bin/env bash
# Everything one short GPU lease measures, in one call: the first call at n=28 split into its
# stages, the kernel bandwidth table and the qubit sweep (qjaxiface only) on the card, each
# stage under its own time limit, results in the folder given (the tables as JSON, rewritten
# cell by cell, so a stage cut short keeps what it measured).
#
# On the lent machine, from the repository root, with wheels of PennyLane and of those of its
# dependencies that the machine lacks in .whl/ (docs/performance.md, "On a GPU"):
#     bash benchmarks/gpu_lease.sh "$OUT"
# Then, back here, render each JSON into docs/benchmarks.md:
#     python benchmarks/kernel_bandwidth.py --render --json <out>/kernel_bandwidth_gpu.json \
#         --docs docs/benchmarks.md
#     python benchmarks/qubit_sweep.py --render --json <out>/qubit_sweep_gpu.json \
#         --docs docs/benchmarks.md
set -u
out=${1:-bench-results}
mkdir -p "$out"
if [ -d .whl ] && [ -n "${OUT:-}" ]; then  # on the lent machine only
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
  --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, pennylane, qjaxiface; print(jax.__version__, jax.devices(), pennylane.__version__)" || exit 1
# The first call of the largest sweep cell split into trace, lower, compile and run (124 s
# at n=28, L=20 on an H200, against 10 s at L=3).
timeout "${SPLIT_SECONDS:-180}" python3 benchmarks/first_call_split.py --n "${SPLIT_N:-28}" \
  --layers 20 --methods adjoint > "$out/first_call_split.log" 2>&1
tail -5 "$out/first_call_split.log"
timeout "${KERNEL_SECONDS:-200}" python3 benchmarks/kernel_bandwidth.py --ns ${KERNEL_NS:-24 28} \
  --json "$out/kernel_bandwidth_gpu.json" > "$out/kernel_bandwidth.log" 2>&1
tail -30 "$out/kernel_bandwidth.log"
timeout "${SWEEP_SECONDS:-320}" python3 benchmarks/qubit_sweep.py --tools qjaxiface \
  --ns ${SWEEP_NS:-16 20 24 28 30} --layers 3 20 --max-gb 100 --max-step 20 --timeout 120 \
  --json "$out/qubit_sweep_gpu.json" 2>&1 | tee "$out/qubit_sweep.log" | grep -v "^| \|^$"

#!/usr/bin/env bash
# The engine on one CUDA GPU, in one script that writes everything to OUT as it goes, so a run cut off
# by a time limit still returns what it measured:
#   env         nvidia-smi, Python, torch, transformers, triton, liger-kernel, pydantic versions
#   loss        the fused loss (liger-kernel) against the chunked and plain ones: value, gradients, memory
#               (the 1b head: vocabulary 128,256, hidden 2048, 8 x 2048 tokens, bf16)
#   throughput  benchmarks/throughput.py on 125m and 1b, seq 2048, bf16, compiled: renewlm's loop
#               against a plain transformers loop in the same run (tokens/s, MFU, peak memory), with a
#               profile of renewlm's last steps
#   cpt         benchmarks/cpt_resume.py on 1b: pre-train, a CPT update with 25% replay killed with
#               SIGKILL past its first (asynchronous) checkpoint, resumed; the curves compared
#
# OUT receives gpu_check.log (everything printed, profiles included) and one JSON per measurement
# (loss.json, throughput-PRESET.json, cpt.json with cpt.log, its runs' own output).
#
#   benchmarks/gpu_check.sh OUT                     # every stage
#   benchmarks/gpu_check.sh OUT throughput cpt      # some of them
#   GPU_CHECK_DRY=1 benchmarks/gpu_check.sh OUT     # tiny sizes on CPU, no wheels: checks the script itself
#
# Measured on one H200 (2026-12-04, the machine's start not counted): env 7 s, loss 42 s,
# throughput 125m 120 s and 1b 144 s (each builds its store and parent model, then both loops with
# compilation), cpt on 125m 105 s; cpt on 1b is expected to take 3-4 minutes.
#
# Wheels of packages the machine lacks may be put in .whl/ (they are installed to /tmp/site first);
# renewlm itself is installed from this tree with --no-deps. Each stage has its own time limit
# (seconds, GPU_CHECK_LIMIT_<STAGE>), so one that hangs cannot take the others' time.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUT [env loss throughput cpt]}
shift
STAGES=${*:-env loss throughput cpt}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
LOG="$OUT/gpu_check.log"
say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

if [ "${GPU_CHECK_DRY:-0}" != 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 \
    || say "installing the carried wheels failed"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import renewlm" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/renewlm . >>"$LOG" 2>&1 \
    && export PYTHONPATH=/tmp/renewlm:$PYTHONPATH \
    || { say "pip could not install renewlm from this tree; using src/ on the path"; export PYTHONPATH=$PWD/src:$PYTHONPATH; }
fi
python3 -c "import renewlm, sys; print('renewlm from', renewlm.__file__)" 2>&1 | tee -a "$LOG"

if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
  LOSS="--device cpu --dtype fp32 --vocab 4096 --hidden 128 --tokens 512"
  THROUGHPUT="--seq-len 128 --batch-tokens 2048 --micro-batch 8 --steps 8 --warmup 2"
  CPT="--preset tiny --seq-len 128 --batch-tokens 2048 --micro-batch 8 --pretrain-steps 10 --steps 30 --checkpoint-every 10 --kill-after 6 --documents 300"
  PRESETS="tiny"
else
  LOSS="--device cuda --dtype bf16 --vocab 128256 --hidden 2048 --tokens 16384"
  THROUGHPUT="--seq-len 2048 --batch-tokens 131072 --micro-batch 8 --steps 10 --warmup 3 --precision bf16 --compile"
  CPT="--preset 1b --seq-len 2048 --batch-tokens 32768 --micro-batch 8 --pretrain-steps 10 --steps 40 --checkpoint-every 20 --kill-after 8 --documents 3000"
  PRESETS="125m 1b"
fi

# run NAME LIMIT COMMAND...: one stage, its output into the log as it comes; the limit kills its process group
run() {
  local name=$1 limit=$2; shift 2
  say "stage $name (limit ${limit}s): $*"
  local started=$SECONDS
  timeout --signal=KILL "$limit" "$@" 2>&1 | tee -a "$LOG"
  say "stage $name: exit ${PIPESTATUS[0]} after $((SECONDS - started))s"
}

for stage in $STAGES; do
  case $stage in
    env)
      { nvidia-smi || echo "no nvidia-smi"; nproc; free -g; df -h /tmp | tail -1
        python3 - <<'EOF'
import importlib.metadata, platform
print("python", platform.python_version())
for name in ("torch", "transformers", "triton", "liger-kernel", "pydantic", "tokenizers", "safetensors", "typer", "rich", "numpy"):
    try:
        print(name, importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        print(name, "missing")
import torch
print("cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
EOF
      } 2>&1 | tee -a "$LOG" ;;
    loss)
      run loss "${GPU_CHECK_LIMIT_LOSS:-90}" python3 benchmarks/loss_memory.py $LOSS --out "$OUT/loss.json" ;;
    throughput)
      for preset in $PRESETS; do
        run "throughput-$preset" "${GPU_CHECK_LIMIT_THROUGHPUT:-240}" python3 benchmarks/throughput.py $THROUGHPUT \
          --presets "$preset" --out "$OUT/throughput-$preset.json" --profile /tmp/gpu-check-profile
        cat "/tmp/gpu-check-profile-$preset.txt" >>"$LOG" 2>/dev/null
      done ;;
    cpt)
      run cpt "${GPU_CHECK_LIMIT_CPT:-300}" python3 benchmarks/cpt_resume.py $CPT --out "$OUT/cpt.json" ;;
    *) say "unknown stage $stage (env loss throughput cpt)" ;;
  esac
done
say "done: $STAGES"

#!/usr/bin/env bash
# One prepared command for a GPU machine: the backends benchmark with torch on CUDA in bfloat16.
#
#   OUT=/some/dir benchmarks/device_bench.sh      (from anywhere; OUT defaults to ./device_bench_out)
#
# Runs the tiny GAR and the GAR-1B-shaped random model (PE-L/14 448 x23, Llama 2048x16; 4 tiles +
# thumbnail, 32 new tokens, k = 1..5 regions, second question) and writes under $OUT:
#   bench_cuda_bf16.json  the benchmark's JSON      bench_cuda_bf16.log  its output
#   env.txt               GPU, driver, versions
# A hard limit of 450 s keeps the whole command under 8 minutes. Needs torch with CUDA,
# transformers, timm (the repository's .venv when present, else the python3 on PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/device_bench_out}"
mkdir -p "$OUT"
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1
{
  echo "date: $(date -u +%FT%TZ)"
  echo "python: $PY"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  "$PY" -c "import torch, transformers, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available()); print('transformers', transformers.__version__, 'timm', timm.__version__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
timeout 450 "$PY" benchmarks/bench_backends.py \
  --models tiny,gar1b --backends torch --device cuda --dtype bfloat16 --threads 8 \
  --new-tokens 32 --repeat 5 --k-max 5 \
  --gar1b-tiles 4 --gar1b-new-tokens 32 --gar1b-repeat 3 --gar1b-k-max 5 --gar1b-second-question \
  --work-dir "$OUT/work" --json "$OUT/bench_cuda_bf16.json" 2>&1 | tee "$OUT/bench_cuda_bf16.log"
rm -rf "$OUT/work"

#!/usr/bin/env bash
# The main job, end to end on ETTh1: teacher -> distilled student -> verified artifacts -> forecast -> profile.
#
# No pretrained TSFM weights can be downloaded on an offline machine, so by default the teacher is a
# PatchTST trained here on the train split. With a real checkpoint at hand, point the same job at it:
#   TEACHER=timemoe TEACHER_PATH=/models/TimeMoE-50M bash scripts/quickstart.sh
#   TEACHER=chronos-bolt TEACHER_PATH=amazon/chronos-bolt-small bash scripts/quickstart.sh   (online)
# Probabilistic variant (a quantile teacher and a quantile student: intervals on the device, banded plot):
#   QUANTILES=deciles bash scripts/quickstart.sh          (or QUANTILES=0.1,0.2,...,0.9; into runs/quickstart-quantiles)
# Teacher training and distillation are skipped once finished; an interrupted distill resumes (and the
# teacher cache continues from its last chunk), so a killed run continues. compile/forecast/profile rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/ETTh1.csv}
QUANTILES=${QUANTILES:-}   # e.g. deciles: quantile teacher (patchtst) and quantile student
Q=(); [ -n "$QUANTILES" ] && Q=(--quantiles "$QUANTILES")
RUN=${RUN:-runs/quickstart${QUANTILES:+-quantiles}}
TEACHER=${TEACHER:-patchtst}
TEACHER_PATH=${TEACHER_PATH:-$RUN/teacher-patchtst}
L=${LOOKBACK:-512}
H=${HORIZON:-96}
EPOCHS=${EPOCHS:-5}
STRIDE=${STRIDE:-2}   # step between training windows (1 = every window; 2 halves the time)
export DISTILTS_CACHE_DIR=${DISTILTS_CACHE_DIR:-$RUN/cache}
D=.venv/bin/distilts
[ -x "$D" ] || D=distilts
step() { printf '\n== %s\n' "$*"; }

if [ "$TEACHER" = patchtst ] && [ ! -f "$TEACHER_PATH/model.safetensors" ]; then
  step "1/5 train a PatchTST teacher on the train split"
  $D train-teacher --data "$DATA" --lookback "$L" --horizon "$H" --stride 4 --epochs 5 --out "$TEACHER_PATH" "${Q[@]}"
fi

STUDENT=$RUN/etth1-dlinear
if [ ! -f "$STUDENT/metrics.json" ]; then
  step "2/5 distill: DLinear student, horizon-weighted KD (teacher outputs cached once; FTA is off for DLinear)${QUANTILES:+; quantiles $QUANTILES}"
  resume=(); [ -d "$STUDENT/checkpoint" ] && resume=(--resume)
  $D distill --teacher "$TEACHER" --teacher-path "$TEACHER_PATH" --student dlinear --data "$DATA" \
    --lookback "$L" --horizon "$H" --tau 1.0 --epochs "$EPOCHS" --stride "$STRIDE" --out "$STUDENT" "${resume[@]}" "${Q[@]}"
fi

step "3/5 compile: ONNX, OpenVINO, TFLite fp32, plus the rpi4 (TFLite int8) and x86-server targets"
$D compile "$STUDENT" --target onnx,openvino,tflite,rpi4,x86-server --data "$DATA"

step "4/5 forecast the 96 steps after the end of the data, torch-free"
$D forecast "$STUDENT/artifacts/tflite-int8-rpi4" --data "$DATA" --out "$RUN/forecast.csv" --plot "$RUN/forecast.png"

step "5/5 profile: artifact vs PyTorch student vs teacher on the same test windows, 1 thread each"
# --threads 1 for every model: with the libraries' defaults torch takes every core and, on a busy machine,
# a 2-thread teacher measured 26x slower than at 1 thread (165 vs 6.4 ms), which inflates the speedup
$D profile "$STUDENT/artifacts/onnx-fp32" --data "$DATA" --teacher "$TEACHER" --teacher-path "$TEACHER_PATH" \
  --threads "${PROFILE_THREADS:-1}" --out "$RUN/profile"
printf '\ndone: student %s, artifacts %s/artifacts, forecast %s/forecast.csv, profile %s/profile/profile.md\n' \
  "$STUDENT" "$STUDENT" "$RUN" "$RUN"

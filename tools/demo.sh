#!/usr/bin/env bash
# The project's main job on the embedded synthetic world, on the CPU:
#   1. environment check
#   2. a small synthetic nuScenes world (v1.0-mini) and its mmdet3d info files
#   3. a picture of one sample (six views, projected LiDAR, boxes)
#   4. stock mmdet3d CenterPoint (packaged config, reduced grid): one epoch
#   5. NS-MAE pre-training (tiny C+L config) with render pictures
#   6. conversion of the NS-MAE LiDAR encoder into CenterPoint's layout
#   7. CenterPoint fine-tuning from the converted weights, evaluated with NuScenesMetric
# Outputs go to $DEMO_DIR (default work_dirs/demo); the world to $DATA_ROOT.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
DATA_ROOT=${DATA_ROOT:-data/synthetic}
DEMO_DIR=${DEMO_DIR:-work_dirs/demo}
SCENES=${SCENES:-4}
KEYFRAMES=${KEYFRAMES:-6}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$DEMO_DIR"
step() { printf '\n==> [demo] %s\n' "$*"; }
data_opts() {  # --cfg-options entries pointing a config at the demo world
  echo "train_dataloader.dataset.data_root=$DATA_ROOT/"
  if [ "${1:-}" = val ]; then
    echo "val_dataloader.dataset.data_root=$DATA_ROOT/" "test_dataloader.dataset.data_root=$DATA_ROOT/"
    echo "val_evaluator.data_root=$DATA_ROOT/" "val_evaluator.ann_file=$DATA_ROOT/nuscenes_infos_val.pkl"
    echo "test_evaluator.data_root=$DATA_ROOT/" "test_evaluator.ann_file=$DATA_ROOT/nuscenes_infos_val.pkl"
  fi
}

step "1/7 environment check"
"$PY" tools/check_env.py

step "2/7 synthetic world ($SCENES scenes x $KEYFRAMES key frames, 704x256) and info files in $DATA_ROOT"
if [ ! -f "$DATA_ROOT/nuscenes_infos_val.pkl" ]; then
  "$PY" tools/create_synthetic_nuscenes.py --out-dir "$DATA_ROOT" --version v1.0-mini \
    --scenes "$SCENES" --keyframes "$KEYFRAMES" --resolution 704x256 --workers 2
  "$PY" tools/create_data.py nuscenes --root-path "$DATA_ROOT" --out-dir "$DATA_ROOT" \
    --extra-tag nuscenes --version v1.0-mini --max-cam-sweeps 2
else
  echo "reusing $DATA_ROOT (delete it to regenerate)"
fi

step "3/7 sample overview -> $DEMO_DIR/sample_overview.png"
"$PY" tools/visualize_sample.py "$DATA_ROOT/nuscenes_infos_train.pkl" --data-root "$DATA_ROOT" \
  --index 0 --out "$DEMO_DIR/sample_overview.png"

CENTERPOINT=configs/centerpoint/centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py
step "4/7 stock CenterPoint, one epoch from scratch"
"$PY" tools/train.py "$CENTERPOINT" --work-dir "$DEMO_DIR/centerpoint_scratch" \
  --cfg-options $(data_opts) train_cfg.max_epochs=1 val_cfg=None val_dataloader=None val_evaluator=None

NSMAE=projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py
step "5/7 NS-MAE pre-training (tiny C+L), render pictures in $DEMO_DIR/nsmae"
"$PY" tools/train.py "$NSMAE" --work-dir "$DEMO_DIR/nsmae" --cfg-options $(data_opts)

step "6/7 convert the NS-MAE LiDAR encoder to CenterPoint's layout (strict, verified against the config's model)"
"$PY" tools/model_converters/convert_checkpoint.py "$DEMO_DIR/nsmae/epoch_2.pth" \
  "$DEMO_DIR/nsmae_to_centerpoint.pth" --src-layout nsmae --dst-layout mmdet3d-centerpoint \
  --modules pts_middle_encoder --strict --target-config "$CENTERPOINT" --overwrite

step "7/7 CenterPoint fine-tuning from the NS-MAE encoder, evaluated with NuScenesMetric"
"$PY" tools/train.py "$CENTERPOINT" --work-dir "$DEMO_DIR/centerpoint_nsmae" \
  --cfg-options $(data_opts val) load_from="$DEMO_DIR/nsmae_to_centerpoint.pth" train_cfg.max_epochs=1 train_cfg.val_interval=1

step "done: pictures and logs under $DEMO_DIR"
ls "$DEMO_DIR"

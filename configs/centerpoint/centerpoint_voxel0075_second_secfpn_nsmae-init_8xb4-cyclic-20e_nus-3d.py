# Stock mmdet3d CenterPoint (voxel 0.075, SECOND, SECFPN) whose sparse encoder
# starts from NS-MAE pre-training. Make the checkpoint with
#   python tools/model_converters/convert_checkpoint.py \
#       work_dirs/nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain/epoch_50.pth \
#       checkpoints/nsmae_swint-lss_second_to_centerpoint.pth \
#       --src-layout nsmae --dst-layout mmdet3d-centerpoint --modules pts_middle_encoder \
#       --strict --target-config configs/centerpoint/<this file>
# (LiDAR-only pre-training: nsmae_second_8xb2-cyclic-50e_nus-pretrain.py works the same way.)
# load_from keeps the spconv metadata the converter writes; everything else
# is the stock config.
_base_ = ['mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

load_from = 'checkpoints/nsmae_swint-lss_second_to_centerpoint.pth'

# mmdet3d's LiDAR-only BEVFusion (projects/BEVFusion) whose sparse encoder
# starts from NS-MAE pre-training (C+L or LiDAR-only NS-MAE).
#
# The stock config lives in an mmdetection3d checkout (v1.4.0), not in the
# mmdet3d wheel: set MMDET3D_ROOT to it (default: ../mmdetection3d beside this
# repository); see bevfusion_lidar-cam_..._nsmae-init_... for the details.
#
# Make the checkpoint with
#   python tools/model_converters/convert_checkpoint.py \
#       work_dirs/nsmae_second_8xb2-cyclic-50e_nus-pretrain/epoch_50.pth \
#       checkpoints/nsmae_second_to_bevfusion-lidar.pth \
#       --src-layout nsmae --dst-layout mmdet3d-bevfusion-lidar --modules pts_middle_encoder --strict
_base_ = ['{{$MMDET3D_ROOT:../../../mmdetection3d}}/projects/BEVFusion/configs/bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']

load_from = 'checkpoints/nsmae_second_to_bevfusion-lidar.pth'

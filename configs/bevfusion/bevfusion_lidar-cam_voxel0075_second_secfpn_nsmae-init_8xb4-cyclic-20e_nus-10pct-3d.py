# Label-efficient fine-tuning: 10 % of the nuScenes training scenes
# (nuscenes_infos_train_10pct.pkl from tools/create_data.py --subsets), NS-MAE init.
_base_ = ['./bevfusion_lidar-cam_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-3d.py']

train_dataloader = dict(dataset=dict(dataset=dict(ann_file='nuscenes_infos_train_10pct.pkl')))
# ObjectSample pastes objects of this subset's frames only (no label leakage):
# tools/create_data.py writes nuscenes_dbinfos_train_10pct.pkl beside the stock database.
gt_database_subset = 'nuscenes_dbinfos_train_10pct.pkl'

# Two-stage recipe (as the stock C+L config, which starts from a LiDAR-only checkpoint), with
# every stage on this subset: (1) train bevfusion_lidar_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-10pct-3d.py
# (NS-MAE LiDAR init); (2) merge its last checkpoint with the camera modules of the NS-MAE
# C+L conversion:
#   python tools/model_converters/merge_stage_checkpoints.py \
#       work_dirs/bevfusion_lidar_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-10pct-3d/epoch_20.pth \
#       checkpoints/nsmae_swint-lss_second_to_bevfusion.pth \
#       checkpoints/bevfusion_lidar-cam_nsmae-init_10pct_stage2.pth
# and train this config from it.
load_from = 'checkpoints/bevfusion_lidar-cam_nsmae-init_10pct_stage2.pth'

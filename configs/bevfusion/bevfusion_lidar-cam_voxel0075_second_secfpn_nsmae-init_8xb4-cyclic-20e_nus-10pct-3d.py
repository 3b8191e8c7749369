# Label-efficient fine-tuning: 10 % of the nuScenes training scenes
# (nuscenes_infos_train_10pct.pkl from tools/create_data.py --subsets), NS-MAE init.
_base_ = ['./bevfusion_lidar-cam_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-3d.py']

train_dataloader = dict(dataset=dict(dataset=dict(ann_file='nuscenes_infos_train_10pct.pkl')))

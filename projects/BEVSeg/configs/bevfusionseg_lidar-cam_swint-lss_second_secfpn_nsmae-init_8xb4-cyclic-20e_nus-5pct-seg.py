# Label-efficient BEV map segmentation from NS-MAE: 5 % of the nuScenes
# training scenes (nuscenes_infos_train_5pct.pkl from tools/create_data.py --subsets).
_base_ = ['./bevfusionseg_lidar-cam_swint-lss_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-seg.py']

train_dataloader = dict(dataset=dict(ann_file='nuscenes_infos_train_5pct.pkl'))

# Tiny NS-MAE C+L with a shrunk Swin-T image backbone, so that its whole
# encoder (img_backbone, img_neck, view_transform, pts_middle_encoder,
# fusion_layer) converts strictly into the tiny stock BEVFusion C+L config
# configs/bevfusion/bevfusion_lidar-cam_voxel03-tiny_swint-tiny_second_secfpn_1xb2-2e_synthetic-3d.py
# (the transfer experiment's nsmae-bevfusion chain). Sibling of
# nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py: only the image backbone
# (Swin-T, 24 embedding channels, one block per stage, as the paper's Swin-T
# shrunk) and the fused channels (64, as the tiny BEVFusion) change.
_base_ = ['./nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py']

model = dict(
    img_backbone=dict(
        _delete_=True,
        type='mmdet.SwinTransformer',
        embed_dims=24,
        depths=[1, 1, 1, 1],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=[1, 2, 3],
        with_cp=False,
        convert_weights=True,
        init_cfg=None),
    img_neck=dict(in_channels=[48, 96, 192]),
    fusion_layer=dict(out_channels=64),
    bev_render_head=dict(in_channels=64))

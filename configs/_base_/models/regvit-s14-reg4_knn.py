# DINO's weighted k-NN on a frozen RegViT (DINOv2 ViT-S/14 with 4 registers here): L2-normalised cls tokens after
# the final norm, the k most similar training images vote with weight exp(cos / 0.07); k = 20 is the main number,
# 10/100/200 are reported too (DINOv2's defaults).
model = dict(
    type='dense_adapters.KNNClassifier',
    data_preprocessor=dict(type='dense_adapters.ClsDataPreprocessor'),
    backbone=dict(
        type='dense_adapters.RegViT',
        preset='dinov2_vits14_reg4',
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth', source='dinov2')),
    num_classes=1000,
    ks=(10, 20, 100, 200),
    main_k=20,
    temperature=0.07,
    feature='token')

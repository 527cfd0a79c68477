# k-NN evaluation: nothing is trained. The test loop extracts the bank (train/, the test dataloader with
# data_prefix replaced) and then scores the test split against it. Run it with tools/test.py.
test_cfg = dict(type='dense_adapters.KNNTestLoop', bank_dataset=dict(data_prefix=dict(img_path='train')))
default_hooks = dict(timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=50))
# nothing trains, so no DistributedDataParallel (it refuses a model without trainable parameters): each process
# keeps its copy on its device
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
# runtime of a classification run: fixed 224x224 inputs (cudnn benchmark on), the plain visualizer, seed 0
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
randomness = dict(seed=0)

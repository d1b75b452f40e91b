"""Backbone weight files as other frameworks store them, read without PyTorch and without MindSpore.

- `torch_reader`: `torch.save` files through a restricted unpickler (tensors, containers and numbers only).
- `mapping`: PyTorch -> MindSpore IResNet parameter names and the key/shape check against a network.
- `layouts`: the accepted checkpoint layouts (`ACCEPTED`) and `read_backbone_state(path)`.

This layer sits below `models` (which loads any accepted layout as `model.backbone_checkpoint`) and `convert`
(which writes a MindSpore checkpoint from one); it imports neither.
"""

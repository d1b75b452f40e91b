"""BatchNorm folding's former home: it lives in `mindface_au.models.fold` (beside the networks it folds); these
names stay importable from here."""

from mindface_au.models.fold import BatchDynamicDense, ChannelAffine, fold_batchnorm, prepare_for_inference

__all__ = ["prepare_for_inference", "fold_batchnorm", "ChannelAffine", "BatchDynamicDense"]

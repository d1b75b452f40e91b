"""engine/validation.py: the validation videos cut to data.val_max_frames as contiguous prefixes."""

import numpy as np

from mindface_au.data.affwild2 import Video
from mindface_au.engine.validation import truncate_videos


def test_truncate_videos_keeps_contiguous_prefixes():
    videos = [
        Video(n, np.arange(1, k + 1), np.zeros((k, 12), np.int8), [f"{n}{i}" for i in range(k)], k)
        for n, k in (("a", 100), ("b", 300))
    ]
    same, total = truncate_videos(videos, 0)
    assert total == 400 and same[1] is videos[1]
    short, total = truncate_videos(videos, 40)
    assert [len(v) for v in short] == [10, 30] and total == 40
    assert short[1].frame_ids.tolist() == list(range(1, 31)) and short[1].image_paths[-1] == "b29"
    assert short[0].num_frames == 100

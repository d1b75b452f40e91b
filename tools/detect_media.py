"""The clips for `detect` moved into the package: `mindface_au.data.synthau.clips` (`mindface-au synth --clips`).

Kept so that scripts importing `detect_media` from tools/ keep working."""

from mindface_au.data.synthau.clips import moving_video, scene_video, speed_video, write_clips  # noqa: F401

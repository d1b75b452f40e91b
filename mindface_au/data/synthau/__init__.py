"""SynthAU: a procedural facial-action-unit video dataset in exactly the Aff-Wild2 layout.

Every frame is a 112x112 aligned face drawn with OpenCV. Each of the 12 challenge AUs moves its own facial
region as FACS describes it, with a continuous intensity in [0, 1]:

    AU1 inner brow raiser   inner brow ends up, central forehead wrinkles
    AU2 outer brow raiser   outer brow ends up, lateral forehead wrinkles
    AU4 brow lowerer        brows down and together, vertical furrows between them
    AU6 cheek raiser        cheeks up, lower lids pushed up, crow's feet
    AU7 lid tightener       narrower eye aperture, straight tense lower lid
    AU10 upper lip raiser   upper lip and nostril wings up, deeper nasolabial folds
    AU12 lip corner puller  mouth corners out and up
    AU15 lip corner depr.   mouth corners down, folds below the corners
    AU23 lip tightener      narrower mouth, thinner red lips
    AU24 lip pressor        lips pressed thin, darker lip line, skin bulges above and below
    AU25 lips part          gap between the lips, teeth visible
    AU26 jaw drop           chin and lower lip down, wide opening

Intensities follow temporal episodes (onset, apex, offset) plus sub-threshold movements; a frame is labelled
1 when the intensity reaches `LABEL_THRESHOLD`. AUs co-occur as in real faces (AU6 with AU12, AU1 with AU2,
AU25 with AU26, AU7 with AU4) and the positive rates roughly follow the Aff-Wild2 training set (Figure 2 of
the paper): AU2, AU15, AU23, AU24 and AU26 a few per cent, AU25 most frequent. Identity, skin tone, lighting,
small pose and scale jitter, blinks, gaze, sensor noise and occasional blur vary per video and frame. Like the
real data some rows are -1 (unlabelled), some labelled frames have no image (no face found), some images have no
row, and a few videos are two-person videos split into `_left` / `_right`.

Output (see mindface_au.data.affwild2 for the layout): train and val annotations (about 2/3 of the videos for
training; both halves of a pair in the same split), a test split with `Test_Set/names.txt` and images but no
labels, the hidden test labels in `synthau_test_labels/<video>.txt` (same format, for `mindface-au score`), and
`synthau.json` (parameters and counts). The dataset is built in a temporary folder beside `out_dir` and renamed
when complete. Everything is deterministic for a seed: each video draws from its own seed sequence, so the
result does not depend on the number of worker processes.

AU9 (nose wrinkler), AU14 (dimpler) and AU17 (chin raiser), the BP4D / DISFA AUs outside the ABAW 12, are drawn
from their own random stream and only for the BP4D, DISFA and list layouts (`layouts.write_synthau(...,
format=...)`); at intensity 0 they draw nothing, so the Aff-Wild2 layout is byte-identical for a seed.

Modules: `face` (identity, AU geometry, drawing), `intensity` (AU episodes and labels), `dataset` (one video,
the whole tree), `layouts` (the other data formats). The names below are the public API.
"""

from mindface_au.data.synthau.dataset import GENERATOR, SUMMARY_FILE, TEST_LABEL_DIR, generate, synth_video
from mindface_au.data.synthau.face import SIZE, Identity, face_geometry, render_face, sample_identity
from mindface_au.data.synthau.intensity import BASE_RATES, LABEL_THRESHOLD, au_intensities, labels_from_intensity
from mindface_au.data.synthau.layouts import FORMATS, write_synthau

__all__ = [
    "Identity",
    "sample_identity",
    "au_intensities",
    "labels_from_intensity",
    "face_geometry",
    "render_face",
    "synth_video",
    "generate",
    "LABEL_THRESHOLD",
    "BASE_RATES",
    "SIZE",
    "TEST_LABEL_DIR",
    "SUMMARY_FILE",
    "GENERATOR",
    "FORMATS",
    "write_synthau",
]

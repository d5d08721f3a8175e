"""StreamClassifier: ring buffers, the shared window policy, one batched call, bad frames, idling.

Unit tests use a small numpy stand-in with the Classifier's interface (its ``prepare`` is the real
``InputSpec.prepare``); the end-to-end tests at the bottom use a real tiny ONNX model.
"""

from __future__ import annotations

import numpy as np
import pytest

from bodies import body_sequence, mediapipe33
from helpers import STREAM_CLASSES, FakeClassifier, assert_same_top, nw_ucla_sequence
from restcn_infer.errors import ModelError, SkeletonFormatError
from restcn_infer.layouts import KINECT20, NTU25, joint_map
from restcn_infer.preprocess import unflatten
from restcn_infer.streaming import StreamClassifier, StreamLimitError


def motion(frames: int, joints: int = 20, bodies: int = 1, seed: int = 0) -> np.ndarray:
    """A moving plausible body ``(bodies, frames, joints, 3)`` (kinect20, or ntu25 for 25)."""
    return body_sequence(frames, "kinect20" if joints == 20 else "ntu25", bodies, seed)


def reference(clf, seq: np.ndarray, frame: int, window: int, top_k: int):
    """What ``classify`` says on the stream's window at ``frame`` (1-based count)."""
    x = clf.prepare(seq[:, max(0, frame - window):frame])
    logits, _ = clf.run(x[None])
    return clf.predict(logits, top_k=top_k)[0]


@pytest.mark.parametrize("policy", ["resample", "pad"])
@pytest.mark.parametrize("window", [None, 10])
def test_frame_by_frame_equals_classify_on_the_same_window(policy, window):
    clf = FakeClassifier(policy=policy, window=16, bodies=2)
    sc = StreamClassifier(clf, hop=4, window=window, top_k=5)
    seqs = {"a": motion(45, bodies=2, seed=1), "b": motion(30, bodies=1, seed=2)}
    decisions = []
    for t in range(45):
        for name, seq in seqs.items():
            if t < seq.shape[1]:
                sc.push(name, seq[:, t])  # (bodies, V, 3)
        if t % 3 == 2:  # poll at a cadence unrelated to the hop
            decisions += sc.poll()
    decisions += sc.poll()
    got = {(d.stream, d.frame): d for d in decisions}
    assert sorted(got) == sorted([("a", f) for f in range(4, 46, 4)]
                                 + [("b", f) for f in range(4, 31, 4)])
    span = window or 16
    for (name, frame), d in got.items():
        assert_same_top(d.top, reference(clf, seqs[name], frame, span, 5))


def test_due_windows_of_all_streams_share_one_session_call():
    clf = FakeClassifier()
    sc = StreamClassifier(clf, hop=3)
    for t in range(3):
        for s in range(7):
            sc.push(s, motion(3, seed=s)[0, t])
    assert sc.num_ready == 7
    assert len(sc.poll()) == 7
    assert clf.batches == [7]
    assert sc.poll() == [] and clf.batches == [7]  # nothing due, no call


def test_max_batch_splits_a_backlog():
    clf = FakeClassifier()
    sc = StreamClassifier(clf, hop=1, max_batch=4)
    for s in range(10):
        sc.push(s, motion(1, seed=s)[0, 0])
    assert [d.stream for d in sc.poll()] == list(range(10))
    assert clf.batches == [4, 4, 2]


def test_decisions_do_not_depend_on_poll_cadence():
    seq = motion(40)
    runs = []
    for every in (1, 7, 1000):
        sc = StreamClassifier(FakeClassifier(), hop=5)
        out = []
        for t in range(40):
            sc.push("s", seq[:, t])
            if (t + 1) % every == 0:
                out += sc.poll()
        out += sc.poll()
        runs.append(out)
    for run in runs:
        assert [d.frame for d in run] == [5, 10, 15, 20, 25, 30, 35, 40]
        for got, want in zip(run, runs[0]):
            assert_same_top(got.top, want.top)  # equal up to batch-size rounding


def test_ntu25_frames_are_mapped_to_a_kinect20_model_by_joint_name():
    clf = FakeClassifier(layout="kinect20")
    sc = StreamClassifier(clf, hop=6, top_k=5)
    seq = motion(12, joints=25)
    for t in range(12):
        sc.push("ntu", seq[0, t])
    decisions = sc.poll()
    assert [d.frame for d in decisions] == [6, 12]
    for d in decisions:
        x = clf.prepare(seq[:, max(0, d.frame - 16):d.frame], source_layout=NTU25)
        assert_same_top(d.top, clf.predict(clf.run(x[None])[0], top_k=5)[0])
    # and the by-name map is a real reorder, not a truncation to the first 20 joints
    assert not np.array_equal(joint_map(NTU25, KINECT20), np.arange(20))


def test_a_stream_needing_derived_joints_is_mapped_like_a_file():
    from restcn_infer.layouts import MEDIAPIPE33

    clf = FakeClassifier(layout="kinect20")
    sc = StreamClassifier(clf, hop=4, top_k=3)
    seq = mediapipe33(motion(8, joints=25))  # no hip centre, no shoulder centre, no hands
    notices = [sc.push("mp", seq[:, t], layout=MEDIAPIPE33).notice for t in range(8)]
    assert "HipCenter = mean of left_hip, right_hip" in notices[0], notices[0]
    decisions = sc.poll()
    assert [d.frame for d in decisions] == [4, 8]
    for d in decisions:
        x = clf.prepare(seq[:, max(0, d.frame - 16):d.frame], source_layout=MEDIAPIPE33)
        assert_same_top(d.top, clf.predict(clf.run(x[None])[0], top_k=3)[0])


def test_a_frame_with_more_people_than_the_model_reads_keeps_its_first_bodies():
    """A crowd in front of a pose estimator (8 people) is a frame, not an error: a 2-body
    model reads the first two, as classify does with a file."""
    clf = FakeClassifier(bodies=2)
    sc = StreamClassifier(clf, hop=4)
    crowd = np.concatenate([motion(4, bodies=2, seed=1), motion(4, bodies=6, seed=2)])
    for t in range(4):
        sc.push("s", crowd[:, t])  # (8, V, 3)
    [d] = sc.poll()
    assert_same_top(d.top, reference(clf, crowd[:2], 4, 16, 5))


@pytest.mark.parametrize("frame, why", [
    (np.full((20, 3), np.nan, np.float32), "NaN"),
    (np.full((20, 3), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((19, 3), np.float32), "joints"),
    (np.zeros((20, 2), np.float32), "the model reads 3-D .* has 2 per joint"),
    (np.zeros((20, 4), np.float32), "shape"),
    (np.zeros((17, 20, 3), np.float32), "shape"),
    (np.zeros((1, 1, 20, 3), np.float32), "shape"),
    ([[1.0, "x", 2.0]] * 20, "numeric"),
    ([[1.0, 2.0, 3.0], [1.0]], "numeric"),
])
def test_bad_frames_are_rejected_and_the_stream_goes_on(frame, why):
    clf = FakeClassifier()
    sc = StreamClassifier(clf, hop=2)
    seq = motion(4)
    sc.push("s", seq[:, 0])
    with pytest.raises(SkeletonFormatError, match=why) as info:
        sc.push("s", frame)
    assert "stream 's'" in str(info.value)
    for t in range(1, 4):
        sc.push("s", seq[:, t])
    assert [d.frame for d in sc.poll()] == [2, 4]  # the bad frame was never counted
    with pytest.raises(SkeletonFormatError):
        sc.push("new", frame)
    assert "new" not in sc and len(sc) == 1


def test_kinect20_frames_cannot_feed_an_ntu25_model():
    sc = StreamClassifier(FakeClassifier(layout="ntu25"), hop=1)
    with pytest.raises(SkeletonFormatError,
                       match="kinect20 has no joints matching .* of layout ntu25"):
        sc.push("s", np.zeros((20, 3), np.float32))


def test_extra_bodies_are_dropped_missing_ones_are_zero():
    clf = FakeClassifier(bodies=2)
    sc = StreamClassifier(clf, hop=3, window=3)
    three = motion(3, bodies=3)
    three[1:, 1] = 0.0  # frame 1 has one body: the absent ones are sent as zeros
    for t in range(3):
        sc.push("s", three[:, t])
    [d] = sc.poll()
    assert_same_top(d.top, reference(clf, three[:2], 3, 3, 5))


def test_timestamps_must_not_go_back():
    sc = StreamClassifier(FakeClassifier(), hop=2)
    frame = motion(1)[0, 0]
    sc.push("s", frame, t=1.0)
    with pytest.raises(SkeletonFormatError, match="goes back"):
        sc.push("s", frame, t=0.5)
    with pytest.raises(SkeletonFormatError, match="finite"):
        sc.push("s", frame, t=float("nan"))
    sc.push("s", frame, t=1.5)
    [d] = sc.poll()
    assert (d.frame, d.t) == (2, 1.5)


def test_idle_streams_are_forgotten_and_new_ones_bounded():
    now = [0.0]
    sc = StreamClassifier(FakeClassifier(), hop=100, idle_timeout_s=5.0, max_streams=2,
                          clock=lambda: now[0])
    frame = motion(1)[0, 0]
    sc.push("a", frame)
    now[0] = 3.0
    sc.push("b", frame)
    with pytest.raises(StreamLimitError, match="2 streams"):
        sc.push("c", frame)
    now[0] = 6.0  # "a" idle for 6 s: a new stream may take its place
    sc.push("c", frame)
    assert "a" not in sc and "b" in sc and "c" in sc
    now[0] = 20.0
    sc.poll()
    assert len(sc) == 0


def test_an_empty_window_gives_no_decision_and_no_error():
    sc = StreamClassifier(FakeClassifier(), hop=2)
    zero = np.zeros((20, 3), np.float32)  # nobody in view
    for _ in range(4):
        sc.push("s", zero)
    assert sc.poll() == [] and sc.skipped_empty == 2
    sc.push("s", motion(1)[0, 0])
    sc.push("s", zero)
    assert [d.frame for d in sc.poll()] == [6]  # the body in frame 5 is classified


def test_flush_decides_the_frames_after_the_last_due_window():
    clf = FakeClassifier()
    sc = StreamClassifier(clf, hop=8)
    seq = motion(11)
    for t in range(11):
        sc.push("s", seq[:, t])
    assert [d.frame for d in sc.flush()] == [8, 11]
    assert sc.flush() == []


def test_decode_returns_skeletons_of_each_window():
    clf = FakeClassifier(bodies=2, decoder_layers=(1, 4, 7))
    sc = StreamClassifier(clf, hop=5, decode=True)
    seq = motion(5, bodies=2)
    for t in range(5):
        sc.push("s", seq[:, t])
    [d] = sc.poll()
    assert d.decoded.shape == (3, 2, 16, 20, 3)  # (L, M, window, V, 3)
    x = clf.prepare(seq)
    np.testing.assert_allclose(d.decoded[1], unflatten(x * 4, 2), atol=1e-6)


def test_constructor_refuses_what_it_cannot_honour():
    with pytest.raises(ModelError, match="decoder"):
        StreamClassifier(FakeClassifier(decoder_layers=()), decode=True)
    with pytest.raises(ValueError, match="hop"):
        StreamClassifier(FakeClassifier(), hop=0)
    for bound in ("max_streams_per_owner", "max_pending_per_owner", "max_pending"):
        with pytest.raises(ValueError, match=f"{bound} must be >= 1, got 0"):
            StreamClassifier(FakeClassifier(), **{bound: 0})  # 0 would refuse or drop all
    sc = StreamClassifier(FakeClassifier())
    with pytest.raises(ValueError, match="max_pending_per_owner must be >= 1"):
        sc.set_limits(max_streams_per_owner=None, max_pending=8, max_pending_per_owner=0)
    assert sc.max_pending == 65_536  # a refused change changes nothing


def test_forgetting_a_stream_frees_its_slot_and_keeps_its_queued_window():
    sc = StreamClassifier(FakeClassifier(), hop=2)
    seq = motion(2)
    for t in range(2):
        sc.push("gone", seq[:, t])
    slot = sc._streams["gone"].slot
    sc.forget("gone")
    assert "gone" not in sc and sc.num_ready == 1  # its due window still runs
    assert sc.push("next", seq[:, 0]).new_stream and sc._streams["next"].slot == slot
    assert [d.stream for d in sc.poll()] == ["gone"]


def test_the_global_pending_bound_empties_another_owners_queue_and_polling_goes_on():
    """Dropping the last window of another owner's queue must not leave an empty queue that
    the round-robin take then pops."""
    from restcn_infer.stream_queue import ReadyQueue
    from restcn_infer.stream_types import PendingWindow

    queue = ReadyQueue(max_pending=2, max_pending_per_owner=None)
    for owner in "ABC":
        queue.add(PendingWindow(owner, 1, None, 0.0, np.zeros((1, 1)), owner=owner))
    assert len(queue) == 2 and queue.dropped == 1
    taken = queue.take()
    assert sorted(w.owner for w in taken) == ["B", "C"] and len(queue) == 0
    assert queue.take() == []


# -- end to end: a real tiny ONNX model (needs torch to export; the runtime itself does not) ----

@pytest.fixture(scope="module")
def tiny_classifier(tiny_export):
    from restcn_infer.classifier import Classifier

    model = tiny_export(window=16, classes=STREAM_CLASSES, decoder_layers=(1, 4, 7, 10))
    return Classifier(model, device="cpu", threads=1)


@pytest.mark.parametrize("window", [None, 24])
def test_real_model_stream_equals_classify_on_nw_ucla(tiny_classifier, shared_data, window):
    clf = tiny_classifier
    seq = nw_ucla_sequence(shared_data)
    sc = StreamClassifier(clf, hop=5, window=window, top_k=10, decode=True)
    decisions = []
    for t in range(seq.shape[1]):
        sc.push("ucla", seq[:, t])
        if t % 4 == 0:
            decisions += sc.poll()
    decisions += sc.flush()
    span = window or clf.spec.input.window
    frames = [d.frame for d in decisions]
    assert frames[:3] == [5, 10, 15] and frames[-1] == seq.shape[1]
    for d in decisions:
        part = seq[:, max(0, d.frame - span):d.frame]
        [want] = clf.classify([part], top_k=10)
        assert_same_top(d.top, want)
        decoded = clf.run(clf.prepare(part)[None], decode=True)[1][0]  # (L, T, D)
        assert d.decoded.shape == (4, 1, clf.spec.input.window, 20, 3)
        np.testing.assert_allclose(d.decoded, unflatten(decoded, 1), atol=1e-5)


def test_real_model_maps_an_ntu_skeleton_stream_like_a_file(tiny_classifier, shared_data):
    from restcn_infer.readers import load_sequence

    clf = tiny_classifier
    path = shared_data / "ntu" / "S001C001P001R001A011.skeleton"
    seq = load_sequence(path)  # (1, 82, 25, 3)
    sc = StreamClassifier(clf, hop=20, top_k=3)
    for t in range(seq.shape[1]):
        sc.push(path.name, seq[:, t])
    decisions = sc.poll()
    assert [d.frame for d in decisions] == [20, 40, 60, 80]
    [want] = clf.classify([seq[:, 80 - clf.spec.input.window:80]], top_k=3)  # maps 25 -> 20 by name
    assert_same_top(decisions[-1].top, want)

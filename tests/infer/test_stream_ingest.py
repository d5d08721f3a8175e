"""Batched ingest: ``StreamClassifier.push_many`` and its whole-array parts
(:mod:`restcn_infer.stream_ingest`, ``fit_windows``) against the one-frame path they replace.

The contract: the same frames through ``push`` one by one and through ``push_many`` in chunks
of any size give the same outcome per frame (the same errors, bad frames beside good ones), the
same queued windows bit for bit, and the same counters."""

from __future__ import annotations

import numpy as np
import pytest

from bodies import body_sequence, mediapipe33
from helpers import FakeClassifier
from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import KINECT20, MEDIAPIPE33, NTU25
from restcn_infer.preprocess import fit_window, fit_windows
from restcn_infer.stream_ingest import RingPool, check_frame, check_frames
from restcn_infer.streaming import Pushed, StreamClassifier

# -- the window policy, batched ----------------------------------------------------------------


@pytest.mark.parametrize("policy", ["resample", "pad"])
@pytest.mark.parametrize("t", [1, 5, 16, 23])
def test_fit_windows_equals_fit_window_row_by_row(policy, t):
    seqs = np.random.default_rng(t).normal(size=(6, 2, t, 4, 3)).astype(np.float32)
    seqs[1, :, 0] = 0.0  # a leading empty frame
    seqs[2, :, -1] = 0.0  # a trailing one
    seqs[3] = 0.0  # nobody
    seqs[4, 1] = 0.0  # one body absent: still full
    fitted, ok = fit_windows(seqs, 16, policy)
    assert fitted.shape == (6, 2, 16, 4, 3) and ok[[0, 4, 5]].all() and not ok[3]
    for i in range(6):
        try:
            want = fit_window(seqs[i], 16, policy)
        except SkeletonFormatError:  # nobody in it (t = 1: frame 0 is all of it)
            assert not ok[i] and not fitted[i].any()
            continue
        assert ok[i]
        np.testing.assert_array_equal(fitted[i], want)


# -- the ring pool and the frame checks --------------------------------------------------------


def test_ring_pool_keeps_each_rings_last_frames_and_reuses_slots():
    pool = RingPool(4, (1, 2, 3))
    slots = [pool.take(limit=100) for _ in range(20)]  # grows 16 -> 32, contents kept
    assert slots == list(range(20)) and len(pool.frames) == 32
    values = np.arange(20 * 7 * 6, dtype=np.float32).reshape(20, 7, 1, 2, 3)
    for k in range(7):  # 7 frames into rings of 4: the first 3 are overwritten
        pool.write(np.arange(20), np.full(20, k), values[:, k])
    for slot in (3, 11):  # the last 4 of 7, oldest first: (M, t, V, C)
        np.testing.assert_array_equal(pool.recent(slot, 7)[0], values[slot, 3:, 0])
    short = pool.take(limit=100)  # a stream of 2 frames so far
    pool.write(np.array([short, short]), np.array([0, 1]), values[0, :2])
    np.testing.assert_array_equal(pool.recent(short, 2)[0], values[0, :2, 0])
    pool.release(11)
    assert pool.take(limit=100) == 11


def frames_of_every_kind() -> list:
    """Frames the one-frame check passes and refuses, for a 3-D model."""
    good = body_sequence(3)[0]  # (3, 20, 3)
    return [good[0], good[1][None], np.stack([good[2]] * 2), good[0].astype(np.float64),
            good[0].astype(np.int32), good[0].tolist(), np.full((20, 3), np.nan, np.float32),
            np.where(np.arange(60).reshape(20, 3) == 7, np.inf, good[0]), good[0] * 3e6,
            np.zeros((19, 3)), np.zeros((20, 2)), np.zeros((17, 20, 3)), np.zeros((1, 1, 20, 3)),
            [[1.0, "x", 2.0]] * 20, np.array(["a"] * 60).reshape(20, 3), np.zeros((0, 3)),
            good[0].astype(np.float64) * 1e300]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("units", ["m", "mm"])
def test_check_frames_passes_exactly_what_check_frame_passes(units):
    from restcn_infer.input_options import InputOptions

    sc = StreamClassifier(FakeClassifier(), options=InputOptions(units=units))
    frames = frames_of_every_kind()
    groups, group, row = check_frames(frames, 3, sc.options.convert)
    for i, frame in enumerate(frames):
        try:
            want = check_frame(frame, sc.spec, sc.options.convert)
        except SkeletonFormatError:
            assert group[i] == -1, i  # never passes a frame the one-frame check refuses
            continue
        if group[i] >= 0:  # the rest it may leave to the one-frame check (lists)
            np.testing.assert_array_equal(groups[group[i]][row[i]], want)
            assert groups[group[i]].dtype == np.float32
    # 5 good, 19 and 0 joints (the stream's layout decides), 3e6 mm = 3 km
    assert (group >= 0).sum() == 7 + (units == "mm")


# -- push_many == push -------------------------------------------------------------------------


def events(seed: int) -> list[tuple]:
    """``(stream, frame, t, layout)`` in arrival order: good streams of several kinds, bad
    frames beside good ones, a stream refused as implausible, empty windows, timestamps going
    back, layouts changing, more streams than allowed."""
    rng = np.random.default_rng(seed)
    kinds = {
        "a": body_sequence(60, seed=1)[0],  # kinect20, one body
        "b": body_sequence(60, bodies=3, seed=2).swapaxes(0, 1),  # 3 bodies: one dropped
        "n": body_sequence(60, "ntu25", seed=3)[0],  # mapped by name
        "p": mediapipe33(body_sequence(60, "ntu25", seed=4))[0],  # derived joints
        "m": body_sequence(60, seed=5)[0] * 1000,  # millimetres: refused
        "z": np.zeros((60, 20, 3), np.float32),  # nobody in view
    }
    bad = [np.full((20, 3), np.nan, np.float32), np.zeros((19, 3), np.float32),
           np.zeros((20, 2), np.float32), np.zeros((17, 20, 3), np.float32), [[1.0, "x"]] * 20,
           body_sequence(1)[0, 0] * 3e6]
    count = dict.fromkeys([*kinds, "x1", "x2", "x3"], 0)
    out = []
    for _ in range(400):
        name = str(rng.choice([*kinds, "x1", "x2", "x3", "bad", "back"],
                              p=[.22, .1, .12, .1, .08, .06, .05, .05, .04, .12, .06]))
        if name == "bad":
            out.append((str(rng.choice(["a", "n", "new"])), bad[rng.integers(len(bad))], None,
                        None))
            continue
        if name == "back":  # a timestamp going back, or a layout declared that is not it
            out.append(("a", kinds["a"][0], -1.0, None) if rng.random() < 0.5
                       else ("n", kinds["n"][0], None, KINECT20))
            continue
        k = count[name]
        count[name] += 1
        frame = kinds["a"][(k + 7) % 60] if name.startswith("x") else kinds[name][k % 60]
        layout = MEDIAPIPE33 if name == "p" else NTU25 if name == "n" and k % 2 else None
        out.append((name, frame, float(k) if name in "an" else None, layout))
    return out


def outcome(result) -> tuple:
    if isinstance(result, Pushed):
        return ("pushed", result.new_stream, result.notice)
    return (type(result).__name__, str(result))


def window_key(p) -> tuple:
    return (p.stream, p.frame, p.t, p.owner, p.arrived, p.x.shape, p.x.tobytes())


@pytest.mark.parametrize("chunk", [1, 3, 16, 1000])
@pytest.mark.parametrize("hop, window, bodies", [(4, None, 2), (1, 5, 1), (5, 3, 1)])
def test_push_many_equals_push_frame_by_frame(chunk, hop, window, bodies):
    now = [0.0]
    engines = [StreamClassifier(FakeClassifier(bodies=bodies), hop=hop, window=window,
                                max_streams=8, max_streams_per_owner=7, max_pending=7,
                                idle_timeout_s=3.0, clock=lambda: now[0]) for _ in range(2)]
    one, many = engines
    stream_events = events(seed=chunk + hop)
    for start in range(0, len(stream_events), chunk):
        part = stream_events[start:start + chunk]
        want = []
        for stream, frame, t, layout in part:
            try:
                want.append(one.push(stream, frame, t, layout=layout, owner="o"))
            except (SkeletonFormatError, ValueError) as exc:
                want.append(exc)
        got = many.push_many([e[0] for e in part], [e[1] for e in part],
                             [e[2] for e in part], layouts=[e[3] for e in part], owner="o")
        assert [outcome(r) for r in got] == [outcome(r) for r in want]
        assert ([window_key(p) for p in many.take_ready()]
                == [window_key(p) for p in one.take_ready()])
        assert (many.skipped_empty, many.dropped, len(many)) == (one.skipped_empty, one.dropped,
                                                                 len(one))
        now[0] += 0.5  # streams left alone for 3 s make room for new ones
    for name in ("a", "n", "p", "x1"):  # the rings hold the same frames
        if name in one:
            state_one, state_many = one._streams[name], many._streams[name]
            assert state_one.count == state_many.count
            np.testing.assert_array_equal(many._rings.recent(state_many.slot, state_many.count),
                                          one._rings.recent(state_one.slot, state_one.count))
    assert [outcome(r) for r in got]  # the scenario reached the end


def test_push_many_takes_one_array_of_frames_and_a_bad_frame_costs_only_itself():
    sc = StreamClassifier(FakeClassifier(), hop=2)
    frames = np.stack([body_sequence(2, seed=s)[0] for s in range(5)], axis=1)  # (2, 5, 20, 3)
    frames[0, 3, 4, 1] = np.nan
    first = sc.push_many(list(range(5)), frames[0])
    assert [type(r).__name__ for r in first] == ["Pushed"] * 3 + ["SkeletonFormatError",
                                                                  "Pushed"]
    assert "NaN" in str(first[3]) and "stream 3" in str(first[3])
    sc.push_many(list(range(5)), frames[1])
    assert [(p.stream, p.frame) for p in sc.take_ready()] == [(0, 2), (1, 2), (2, 2), (4, 2)]
    with pytest.raises(ValueError, match="as many frames"):
        sc.push_many([0, 1], frames[0])


def test_a_stream_forgotten_within_a_call_keeps_its_frames_and_window():
    """Every clock tick makes all other streams idle: a new stream beyond ``max_streams``
    evicts the ones whose frames still wait in the same push_many; their windows stay right
    and their ring slots are not handed to the new streams before the frames are in."""
    def engine() -> StreamClassifier:
        ticks = iter(range(10**6))
        return StreamClassifier(FakeClassifier(), hop=1, max_streams=3, idle_timeout_s=0.5,
                                clock=lambda: float(next(ticks)))

    seqs = {name: body_sequence(8, seed=k)[0] for k, name in enumerate("abcdef")}
    order = [(name, t) for t in range(0, 4) for name in "abc"] + [  # a, b, c checked, then
        (name, t) for t in range(4, 8) for name in "abcdef"]  # d, e, f evict them, and back
    one, many = engine(), engine()
    want = [one.push(name, seqs[name][t]) for name, t in order]
    got = many.push_many([name for name, _ in order], [seqs[name][t] for name, t in order])
    assert [outcome(r) for r in got] == [outcome(r) for r in want]
    assert sum(r.new_stream for r in got) == 3 + 3 + 6 * 3  # from d on, every frame
    assert ([window_key(p) for p in many.take_ready()]
            == [window_key(p) for p in one.take_ready()])


def test_streams_evicted_as_idle_within_a_call_give_their_slots_to_the_new_ones():
    """A full pool whose streams all go idle, then as many new streams in one push_many: the
    new ones reuse the idle ones' slots (not fed in this call, nothing of theirs is waiting),
    so the ring pool does not grow past the live streams."""
    now = [0.0]
    sc = StreamClassifier(FakeClassifier(), hop=4, max_streams=20, idle_timeout_s=1.0,
                          clock=lambda: now[0])
    frame = body_sequence(1, seed=0)[0, 0]
    sc.push_many([f"old{k}" for k in range(20)], [frame] * 20)
    capacity = len(sc._rings.frames)
    now[0] = 5.0  # every stream idle
    got = sc.push_many([f"new{k}" for k in range(20)], [frame] * 20)
    assert all(r.new_stream for r in got) and len(sc) == 20
    assert len(sc._rings.frames) == capacity == 20


def test_the_protocol_gives_the_same_records_line_by_line_and_in_one_push_many():
    import json

    from restcn_infer.stream_protocol import StreamStats, feed_line, feed_lines

    lines = []
    for stream, frame, t, layout in events(seed=7)[:250]:
        joints = frame.tolist() if isinstance(frame, np.ndarray) else frame
        record = {"stream": stream, "joints": joints}
        if t is not None:
            record["t"] = t
        if layout is not None:
            record["layout"] = layout.name
        lines.append(json.dumps(record))
    lines[5:5] = ["", "not json", '{"stream": "a"}', '{"stream": "a", "joints": [[1, 2]]}']
    numbered = list(enumerate(lines, 1))
    engines = [StreamClassifier(FakeClassifier(bodies=2), hop=3, max_streams=8,
                                max_streams_per_owner=7, clock=lambda: 0.0) for _ in range(2)]
    stats = [StreamStats(), StreamStats()]
    want = [feed_line(engines[0], text, n, stats[0], namespace="c") for n, text in numbered]
    got = feed_lines(engines[1], numbered, stats[1], namespace="c")
    assert got == want and stats[1] == stats[0]
    assert stats[0].rejected > 20 and stats[0].frames > 100
    assert ([window_key(p) for p in engines[1].take_ready()]
            == [window_key(p) for p in engines[0].take_ready()])

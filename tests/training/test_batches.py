"""The batched training path (restcn_training.batches) against the per-sample numpy reference:
the window policy of InputSpec.prepare and Augmentation.apply, on the same draws; and the
batched draws against the per-sample distributions they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from restcn_infer.datasets import ListSplit
from restcn_infer.layouts import KINECT20
from restcn_infer.spec import InputSpec
from restcn_training.augment import Augmentation, Draws
from restcn_training.batches import BatchDraws, DeviceSplit, epoch_generator

AUGMENT = Augmentation(crop=0.6, rotate=60.0, scale=0.2, shift=0.5, tilt=20.0, roll=10.0)


def random_split(rng, n: int = 7, bodies: int = 2, coords: int = 3) -> ListSplit:
    """Sequences of 1..40 frames with empty frames at the ends and inside, an absent body, and
    a joint never tracked: everything the policy and the transforms must get right."""
    seqs = []
    for i in range(n):
        t = int(rng.integers(1, 41))
        seq = rng.normal(size=(bodies, t, 20, coords)).astype(np.float32) + np.float32(2.0)
        seq[:, :, int(rng.integers(0, 20))] = 0.0  # a joint never tracked
        if bodies > 1 and i % 2:
            seq[1] = 0.0  # the second body absent
        if t > 6:
            seq[:, : int(rng.integers(0, 3))] = 0.0  # empty frames at the start
            seq[:, t - int(rng.integers(0, 3)):] = 0.0  # and at the end
            seq[:, t // 2] = 0.0  # and one inside
        if not np.any(seq):
            seq[0, 0, 0] = 1.0
        seqs.append(seq)
    return ListSplit(seqs, np.arange(n) % 3, [f"s{i}" for i in range(n)])


def as_draws(batch: BatchDraws, i: int) -> Draws:
    """Sequence ``i``'s draws in the per-sample reference's form."""
    if batch.offset is None:
        return Draws(int(batch.keep[i]), int(batch.first[i]))
    return Draws(int(batch.keep[i]), int(batch.first[i]), float(batch.angle[i]),
                 float(batch.factor[i]), batch.offset[i].numpy(), float(batch.tilt[i]),
                 float(batch.roll[i]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), window=st.sampled_from([1, 5, 16, 33, 64]),
       policy=st.sampled_from(["resample", "pad"]), bodies=st.integers(1, 2),
       coords=st.sampled_from([2, 3]))
def test_unaugmented_batches_are_the_window_policy_bit_for_bit(seed, window, policy, bodies,
                                                               coords):
    rng = np.random.default_rng(seed)
    split = random_split(rng, bodies=bodies, coords=coords)
    spec = InputSpec(layout=KINECT20, bodies=bodies, window=window, policy=policy,
                     coords=coords)
    data = DeviceSplit(split, spec, torch.device("cpu"))
    x, y = data.batch(torch.arange(len(split)))
    want = np.stack([spec.prepare(split.sequence(i)) for i in range(len(split))])
    np.testing.assert_array_equal(x.numpy(), want)
    np.testing.assert_array_equal(y.numpy(), split.labels)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), window=st.sampled_from([8, 16, 64]),
       policy=st.sampled_from(["resample", "pad"]),
       augmentation=st.sampled_from([AUGMENT, Augmentation(crop=0.5), Augmentation(rotate=90)]),
       coords=st.sampled_from([2, 3]))
def test_augmented_batches_equal_the_per_sample_reference_on_the_same_draws(
        seed, window, policy, augmentation, coords):
    rng = np.random.default_rng(seed)
    split = random_split(rng, coords=coords)
    spec = InputSpec(layout=KINECT20, bodies=2, window=window, policy=policy, coords=coords)
    data = DeviceSplit(split, spec, torch.device("cpu"))
    index = torch.arange(len(split))
    draws = BatchDraws.draw(augmentation, data.lengths, torch.Generator().manual_seed(seed))
    x, _ = data.batch(index, draws)
    for i in range(len(split)):
        reference = spec.prepare(augmentation.apply(split.sequence(i), as_draws(draws, i)))
        np.testing.assert_allclose(x[i].numpy(), reference, rtol=1e-5, atol=2e-5)


def test_the_batched_draws_have_the_per_sample_distributions():
    """Kolmogorov-Smirnov distance of each drawn quantity (batched vs the numpy reference over
    the same number of sequences) stays below the 0.1 % critical value."""
    frames = torch.full((4000,), 50, dtype=torch.int64)
    batched = BatchDraws.draw(AUGMENT, frames, torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    reference = [AUGMENT.draw(rng, 50) for _ in range(len(frames))]
    pairs = {
        "keep": (batched.keep.numpy(), [d.keep for d in reference]),
        "first": (batched.first.numpy(), [d.first for d in reference]),
        "angle": (batched.angle.numpy(), [d.angle for d in reference]),
        "factor": (batched.factor.numpy(), [d.factor for d in reference]),
        "offset": (batched.offset[:, 1].numpy(), [d.offset[1] for d in reference]),
        "tilt": (batched.tilt.numpy(), [d.tilt for d in reference]),
        "roll": (batched.roll.numpy(), [d.roll for d in reference]),
    }
    critical = 1.95 * np.sqrt(2 / len(frames))  # two-sample KS, alpha = 0.001
    for name, (a, b) in pairs.items():
        a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
        grid = np.union1d(a, b)
        distance = np.abs(np.searchsorted(a, grid, "right") / len(a)
                          - np.searchsorted(b, grid, "right") / len(b)).max()
        assert distance < critical, (name, distance)
    assert batched.keep.min() >= 30 and batched.keep.max() == 50  # crop 0.6 of 50 frames
    assert (batched.first + batched.keep <= 50).all()
    assert batched.angle.abs().max() <= np.deg2rad(60)
    assert batched.roll.abs().max() <= np.deg2rad(10)


def test_draws_are_a_function_of_seed_epoch_and_rank():
    frames = torch.tensor([10, 20, 30])
    first = BatchDraws.draw(AUGMENT, frames, epoch_generator(3, 1))
    again = BatchDraws.draw(AUGMENT, frames, epoch_generator(3, 1))
    other = BatchDraws.draw(AUGMENT, frames, epoch_generator(3, 2))
    rank = BatchDraws.draw(AUGMENT, frames, epoch_generator(3, 1, rank=1))
    assert torch.equal(first.angle, again.angle) and torch.equal(first.keep, again.keep)
    assert not torch.equal(first.angle, other.angle)
    assert not torch.equal(first.angle, rank.angle)


def test_a_crop_over_an_empty_stretch_keeps_the_whole_sequence():
    seq = np.zeros((1, 10, 20, 3), np.float32)
    seq[0, 0] = 1.0
    seq[0, 9] = 2.0  # frames 1..8 empty
    split = ListSplit([seq], np.zeros(1, np.int64), ["gap"])
    spec = InputSpec(layout=KINECT20, bodies=1, window=4)
    data = DeviceSplit(split, spec, torch.device("cpu"))
    draws = BatchDraws(keep=torch.tensor([3]), first=torch.tensor([3]))  # frames 3..5: empty
    x, _ = data.batch(torch.tensor([0]), draws)
    np.testing.assert_array_equal(x[0].numpy(), spec.prepare(seq))
    reference = Augmentation(crop=0.5).apply(seq, Draws(3, 3))
    np.testing.assert_array_equal(reference, seq)


def test_absent_joints_and_bodies_stay_zero_after_the_transform():
    rng = np.random.default_rng(1)
    split = random_split(rng)
    spec = InputSpec(layout=KINECT20, bodies=2, window=16)
    data = DeviceSplit(split, spec, torch.device("cpu"))
    draws = BatchDraws.draw(Augmentation(rotate=90, shift=1.0), data.lengths,
                            torch.Generator().manual_seed(1))
    x, _ = data.batch(torch.arange(len(split)), draws)
    plain, _ = data.batch(torch.arange(len(split)))
    zero = plain.reshape(len(split), 16, -1, 3).eq(0).all(-1)
    assert x.reshape(len(split), 16, -1, 3)[zero].eq(0).all()


@pytest.mark.parametrize("policy", ["resample", "pad"])
def test_real_nw_ucla_batches_are_the_inference_path(shared_data, policy):
    from restcn_infer.datasets import open_dataset

    split = open_dataset(shared_data / "nw_ucla" / "nw_ucla.pkl").split("val")
    spec = InputSpec(layout=KINECT20, bodies=1, window=64, policy=policy)
    data = DeviceSplit(split, spec, torch.device("cpu"))
    index = torch.arange(0, len(split), 7)
    x, _ = data.batch(index)
    want = np.stack([spec.prepare(split.sequence(int(i))) for i in index])
    np.testing.assert_array_equal(x.numpy(), want)

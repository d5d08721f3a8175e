"""The pictures say what the report says: the predicted class and its probability in the title,
the recording's own frame numbers (not the window's), the targeted joints ringed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from restcn_infer import render  # noqa: E402
from restcn_infer.classifier import Classifier  # noqa: E402
from restcn_infer.decode import decode_sequence  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Render the bundled res-tcn's decoding of the 14-frame throw example; the figure is
    captured instead of saved."""
    figures = []
    monkeypatch.setattr(render, "save_png", lambda fig, out: figures.append(fig) or Path(out))
    clf = Classifier("res-tcn", device="cpu")
    seq = np.load(REPO / "examples" / "nw_ucla_throw.npy")  # (1, 14, 20, 3)
    result = decode_sequence(clf, seq)
    hands = [6, 7, 10, 11]
    render.render_decode_result(result, tmp_path / "x.png", mean=clf.spec.mean_array,
                                sequence=seq, name="throw.npy", policy=clf.spec.input.policy,
                                highlight=hands)
    return figures[0], result, seq, hands


def test_the_title_names_the_class_and_its_softmax_probability(drawn):
    fig, result, _, _ = drawn
    z = np.asarray(result.logits, np.float64)
    p = np.exp(z - z.max()).max() / np.exp(z - z.max()).sum()
    assert fig._suptitle.get_text() == f"throw.npy: {result.predicted} (p = {p:.2f})"


def test_frames_carry_the_recording_s_frame_numbers(drawn):
    fig, _, seq, _ = drawn
    labels = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert labels and all(label.startswith("frame ") for label in labels)
    numbers = [float(label.split()[1]) for label in labels]
    assert numbers[0] == 0 and numbers[-1] == seq.shape[1] - 1  # first and last of 14
    assert numbers == sorted(numbers)


def test_the_targeted_joints_are_ringed_and_no_others(drawn):
    fig, _, _, hands = drawn
    panels = [ax for ax in fig.axes if ax.collections]
    for ax in panels:
        ringed = sum(1 for c in ax.collections
                     if len(c.get_edgecolors()) and np.allclose(c.get_edgecolors()[0][:3], 0))
        assert ringed == len(hands)

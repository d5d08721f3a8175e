"""Accuracy of a deployed model on a labelled split, through the runtime (numpy + onnxruntime).

Every sequence goes through the path ``restcn-infer classify`` takes (``Classifier.prepare`` ->
one batched session call -> softmax), so the figures are the deployed model's, not the training
code's. The data set's classes are matched to the model's by name: a data set may list them in
another order, or hold only some of them; a class the model does not know is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restcn_infer.checked_input import finite_rows
from restcn_infer.classifier import Classifier
from restcn_infer.datasets import Dataset, LabelledSplit
from restcn_infer.errors import DataError, SkeletonFormatError

#: ``progress(done, total)`` after each batch.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Evaluation:
    """What a model predicts on a split.

    Attributes:
        classes: the model's class names (the order of every per-class array).
        labels: true labels ``(N,)`` in the model's class indices.
        logits: ``(N, C)`` float32, one row per sequence.
        names: sample names ``(N,)``.
        errors: sequences that could not be read or prepared: ``{name: reason}`` (left out of
            every figure).
    """

    classes: list[str]
    labels: np.ndarray
    logits: np.ndarray
    names: list[str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1) if len(self.logits) else np.zeros(0, np.int64)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels)) if len(self.labels) else 0.0

    def confusion(self) -> np.ndarray:
        """``(C, C)`` int64: row = true class, column = predicted class."""
        k = len(self.classes)
        counts = np.bincount(self.labels * k + self.predicted, minlength=k * k)
        return counts.reshape(k, k)

    def per_class_accuracy(self) -> dict[str, float | None]:
        """Accuracy per class; ``None`` for a class with no sequence in the split."""
        confusion = self.confusion()
        support = confusion.sum(axis=1)
        return {name: (float(confusion[i, i] / support[i]) if support[i] else None)
                for i, name in enumerate(self.classes)}

    def to_json(self) -> dict[str, Any]:
        """The stable document of ``restcn-infer evaluate --json``."""
        confusion = self.confusion()
        return {"samples": int(len(self.labels)), "accuracy": self.accuracy,
                "classes": self.classes, "per_class_accuracy": self.per_class_accuracy(),
                "support": confusion.sum(axis=1).tolist(), "confusion_matrix": confusion.tolist(),
                "errors": [{"sample": k, "error": v} for k, v in self.errors.items()]}


def class_index(model_classes: list[str], data_classes: list[str], where: str) -> np.ndarray:
    """For each data-set class, its index among the model's classes (matched by name).

    Raises:
        DataError: a data-set class the model does not know.
    """
    known = {name: i for i, name in enumerate(model_classes)}
    unknown = [name for name in data_classes if name not in known]
    if unknown:
        raise DataError(f"{where}: classes {unknown[:5]} are not among the model's "
                        f"{len(model_classes)} classes ({', '.join(model_classes[:5])}, ...)")
    return np.array([known[name] for name in data_classes], dtype=np.int64)


def evaluate(classifier: Classifier, data: Dataset, split: str, *, batch_size: int = 64,
             progress: Progress | None = None) -> Evaluation:
    """Classify every sequence of ``data``'s ``split`` and keep the logits.

    A sequence that cannot be prepared (empty, non-finite, unmappable joints, implausible) or
    whose scores are not finite is recorded in ``errors`` and left out; the others are
    evaluated.

    Raises:
        DataError: unknown split, or data-set classes the model does not know.
    """
    part: LabelledSplit = data.split(split)
    model_classes = list(classifier.spec.classes)
    to_model = class_index(model_classes, list(data.classes), f"{data.path}")
    labels, names, logits, errors = [], [], [], {}
    batch: list[np.ndarray] = []
    batch_labels: list[int] = []
    batch_names: list[str] = []

    def flush() -> None:
        if batch:
            scores = classifier.run(np.stack(batch))[0]  # (B, C)
            ok = finite_rows(scores)
            for name in np.asarray(batch_names)[~ok]:
                errors[str(name)] = "the model's scores are not finite (NaN or infinity)"
            logits.append(scores[ok])
            labels.extend(np.asarray(batch_labels, dtype=np.int64)[ok].tolist())
            names.extend(np.asarray(batch_names, dtype=object)[ok].tolist())
            batch.clear()
            batch_labels.clear()
            batch_names.clear()

    total = len(part)
    for i in range(total):
        name = str(part.names[i])
        try:
            x = classifier.prepare(part.sequence(i), source_layout=data.layout,
                                   source=name)  # (window, D), in the data set's own layout
        except SkeletonFormatError as exc:
            errors[name] = exc.reason
            continue
        batch.append(x)
        batch_labels.append(int(to_model[int(part.labels[i])]))
        batch_names.append(name)
        if len(batch) == batch_size:
            flush()
            if progress is not None:
                progress(i + 1, total)
    flush()
    if progress is not None:
        progress(total, total)
    stacked = (np.concatenate(logits) if logits
               else np.zeros((0, len(model_classes)), np.float32))
    return Evaluation(classes=model_classes, labels=np.array(labels, dtype=np.int64),
                      logits=stacked, names=names, errors=errors)

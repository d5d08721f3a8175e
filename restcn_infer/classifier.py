"""Classify skeleton sequences with an exported restcn model: numpy pre-process -> run -> softmax.

One :class:`Classifier` owns one onnxruntime session. Everything it knows about the model comes
from the model's ``restcn`` metadata (:class:`~restcn_infer.metadata.ModelMetadata`), whose
:class:`~restcn_infer.spec.ModelSpec` says how to read an input (``clf.spec.input.prepare``)::

    clf = Classifier()                                  # the bundled NW-UCLA model
    for result in clf.classify_files(["a.skeleton", "b.npy"]):
        print(result.path, result.error or result.top[0].name)

A file's joint count picks its layout; a file in another layout than the model's is mapped by
joint name (e.g. an NTU ``.skeleton`` into a ``kinect20`` model), which is logged once per layout
pair on the ``restcn_infer`` logger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.errors import ModelError, SkeletonFormatError
from restcn_infer.layouts import JointLayout
from restcn_infer.metadata import ModelMetadata
from restcn_infer.models import BUNDLED_MODELS, resolve_model
from restcn_infer.readers import load_sequence
from restcn_infer.readers.arrays import check_sequence
from restcn_infer.session import create_session
from restcn_infer.spec import ModelSpec

log = logging.getLogger("restcn_infer")


@dataclass(frozen=True)
class Prediction:
    """One class of a ranking: ``label`` index, class ``name`` and softmax ``probability``."""

    label: int
    name: str
    probability: float


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: ``top`` predictions, or the ``error`` that stopped it."""

    path: Path
    top: list[Prediction] | None = None
    error: Exception | None = None


def load_model_metadata(session, source: str) -> ModelMetadata:
    """Read and validate the ``restcn`` metadata of a session's model (:class:`ModelError`)."""
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, source)


class Classifier:
    """An exported restcn model over one onnxruntime session.

    Args:
        model: an ``.onnx`` file written by ``restcn-export``, or the name of a bundled model
            (``res-tcn``, ``ms-res-tcn``); ``None``: the default bundled model.
        device: ``auto`` (CUDA, else CPU with one logged line), ``cuda`` or ``cpu``.
        threads: onnxruntime intra-op threads; ``None``: one per physical core.

    Raises:
        ModelError: the file is missing, not a loadable ONNX model, or its metadata is missing,
            corrupt, of a newer format version, or disagrees with the graph.
        DeviceError: ``device="cuda"`` and CUDA cannot be started.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, device: str = "auto",
                 threads: int | None = None) -> None:
        self.model_path = resolve_model(model)
        if self.model_path.is_dir():
            raise ModelError(f"{self.model_path}: is a directory, expected an .onnx model file")
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: no such model file (bundled models by name: "
                             f"{', '.join(BUNDLED_MODELS)})")
        self.session = create_session(self.model_path, device=device, threads=threads)
        self.metadata = load_model_metadata(self.session, str(self.model_path))
        self.spec: ModelSpec = self.metadata.spec
        self.providers: list[str] = self.session.get_providers()
        self._check_graph()
        self._mapped: set[str] = set()

    def _check_graph(self) -> None:
        """The graph must have the inputs and outputs its metadata promises."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        where = str(self.model_path)
        if "skeleton" not in inputs or "logits" not in outputs:
            raise ModelError(f"{where}: expected input 'skeleton' and output 'logits', got "
                             f"inputs {sorted(inputs)} and outputs {sorted(outputs)}")
        d = inputs["skeleton"].shape[-1]
        if isinstance(d, int) and d != self.spec.input.D:
            raise ModelError(f"{where}: graph input has D={d}, metadata says {self.spec.input.D}")
        # restcn-export gates the decoder head behind an optional input (an initializer).
        self._has_decode_input = any(i.name == "decode"
                                     for i in self.session.get_overridable_initializers())
        if self.metadata.decoder_layers and "decoded" not in outputs:
            raise ModelError(f"{where}: metadata lists decoder layers but the graph has no "
                             "'decoded' output")

    def prepare(self, seq: np.ndarray, *, source_layout: JointLayout | None = None,
                source: object = None) -> np.ndarray:
        """A sequence ``(M, T, V, 3)`` or ``(T, V, 3)`` as one input ``(window, D)`` float32.

        :meth:`InputSpec.prepare <restcn_infer.spec.InputSpec.prepare>` of the model; a mapping
        from another layout is logged once per layout. Raises :class:`SkeletonFormatError`
        (naming ``source``) for an empty, non-finite or unmappable sequence.
        """
        seq = check_sequence(seq, source)
        spec = self.spec.input
        layout = spec.source_layout(seq.shape[2], source_layout, source)
        if layout.name != spec.layout.name:
            self._note_mapping(layout)
        return spec.prepare(seq, layout=layout, source=source)

    def _note_mapping(self, source: JointLayout) -> None:
        if source.name not in self._mapped:
            self._mapped.add(source.name)
            target = self.spec.input.layout
            log.warning("input joints are in layout %s (%d joints); mapping them by name to the "
                        "model's layout %s (%d joints)", source.name, source.num_joints,
                        target.name, target.num_joints)

    def run(self, batch: np.ndarray, *,
            decode: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """One session call: ``(B, T, D)`` float32 -> logits ``(B, C)``, decoded or ``None``.

        ``decoded`` ``(B, L, T, D)`` is computed only when ``decode`` is true.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        d = self.spec.input.D
        if batch.ndim != 3 or batch.shape[2] != d or batch.shape[1] < 1:
            raise ValueError(f"expected a batch (B, T, {d}), got {batch.shape}")
        if decode and not self.metadata.decoder_layers:
            raise ModelError(f"{self.model_path}: exported without a decoder head "
                             "(re-export with --decoder-layers)")
        names = ["logits", "decoded"] if decode else ["logits"]
        feed = {"skeleton": batch}
        if self._has_decode_input:  # skip the decoder head's work, not just its copy
            feed["decode"] = np.array(decode)
        outputs = self.session.run(names, feed)
        return outputs[0], (outputs[1] if decode else None)

    def predict(self, logits: np.ndarray, top_k: int = 5) -> list[list[Prediction]]:
        """Softmax over ``logits (B, C)``; the ``top_k`` most likely classes per row."""
        logits = np.asarray(logits, dtype=np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)  # (B, C)
        k = max(1, min(top_k, probs.shape[1]))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (B, k)
        classes = self.spec.classes
        return [[Prediction(int(c), classes[c], float(row[c])) for c in idx]
                for row, idx in zip(probs, order)]

    def classify(self, sequences: Sequence[np.ndarray], *, top_k: int = 5,
                 batch_size: int = 64) -> list[list[Prediction]]:
        """Top-k predictions for each sequence ``(M, T, V, 3)``, ``batch_size`` per session call."""
        inputs = [self.prepare(seq) for seq in sequences]
        results: list[list[Prediction]] = []
        for start in range(0, len(inputs), batch_size):
            logits, _ = self.run(np.stack(inputs[start:start + batch_size]))
            results.extend(self.predict(logits, top_k))
        return results

    def classify_files(self, paths: Iterable[str | os.PathLike[str]], *, top_k: int = 5,
                       batch_size: int = 64) -> Iterator[FileResult]:
        """Read, prepare and classify files in batches; yields one :class:`FileResult` per path.

        A file that cannot be read or prepared yields a result with ``error`` set (a
        :class:`SkeletonFormatError`) and does not stop the others.
        """
        pending: list[tuple[Path, np.ndarray | None, Exception | None]] = []
        for path in paths:
            path = Path(path)
            try:
                pending.append((path, self.prepare(load_sequence(path), source=path), None))
            except SkeletonFormatError as exc:
                pending.append((path, None, exc.named(path)))
            if sum(x is not None for _, x, _ in pending) == batch_size:
                yield from self._flush(pending, top_k)
                pending = []
        yield from self._flush(pending, top_k)

    def _flush(self, pending: list, top_k: int) -> Iterator[FileResult]:
        ready = [x for _, x, _ in pending if x is not None]
        preds = iter(self.predict(self.run(np.stack(ready))[0], top_k) if ready else [])
        for path, x, error in pending:
            yield FileResult(path, error=error) if x is None else FileResult(path, next(preds))

"""``report.html``: a diagnosis as one self-contained page (inline CSS, JS and data; no network;
opens from disk), and ``diagnosis.json`` beside it.

The page renders everything from the embedded JSON with plain JavaScript: the overview and the
suggested fix with its command, a sortable per-class table, the confusion matrix, the emphasis
heatmap (class x joint group, one layer at a time), response signatures, confused pairs in
decoded space, view invariance, animated decoded skeletons of chosen samples (play, pause, scrub;
the input beside each decoded layer drawn at its display scale; joints coloured by group, left
and right distinct, the suggested group highlighted; the recording's own frame numbers) and the
motion primitives. The template is ``report_template.html`` beside this module; the data goes
into its ``<script type="application/json">`` elements, escaped so no string can end them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from restcn_infer.atomic import atomic_write_text
from restcn_infer.diagnosis_summary import Diagnosis
from restcn_infer.output_paths import check_output_dir
from restcn_infer.skeleton_style import joint_style

TEMPLATE = Path(__file__).resolve().parent / "report_template.html"


def animation_data(diagnosis: Diagnosis) -> dict[str, Any]:
    """What the page animates: samples (input and display-scaled layers, 3 decimals, absent
    points as null) and primitives."""
    def points(seq: np.ndarray) -> list:
        rounded = np.round(seq.astype(np.float64), 3)
        absent = ~np.any(seq != 0, axis=-1)
        out = rounded.tolist()
        for index in zip(*np.nonzero(absent)):
            node = out
            for i in index[:-1]:
                node = node[i]
            node[index[-1]] = None
        return out

    target = diagnosis.document["suggested_target_joints"]["joints"]
    data = {"style": joint_style(diagnosis.layout, target), "samples": [], "primitives": [],
            "y_down": diagnosis.y_down}
    for sample in diagnosis.samples:
        present = np.any(sample.input != 0, axis=-1)  # (M, T, V)
        decoded = np.where(present[None, ..., None], sample.decoded, 0.0)  # same points
        data["samples"].append({
            "name": sample.name, "label": sample.label, "predicted": sample.predicted,
            "probability": round(sample.probability, 4),
            "frames": [None if not np.isfinite(f) else round(float(f), 1) for f in sample.frames],
            "input": points(sample.input), "decoded": points(decoded)})
    if diagnosis.primitives is not None:
        for label, prim in zip(diagnosis.primitive_labels, diagnosis.primitives):
            data["primitives"].append({"label": label,  # (M, f, V, 3): bodies, then taps
                                       "frames": points(prim.swapaxes(0, 1))})
    return data


def _embedded(value: Any) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>``, ``&`` and U+2028/9 escaped."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def write_report(diagnosis: Diagnosis, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``out_dir/diagnosis.json`` and ``out_dir/report.html`` (atomically); their paths.

    Raises:
        OutputPathError: ``out_dir`` is a file or cannot be created or written.
    """
    out = Path(out_dir)
    check_output_dir(out, what="the report (diagnosis.json, report.html)")
    document = diagnosis.document
    page = TEMPLATE.read_text(encoding="utf-8")
    page = page.replace("__DIAGNOSIS_JSON__", _embedded(document))
    page = page.replace("__ANIMATION_JSON__", _embedded(animation_data(diagnosis)))
    page = page.replace("__TITLE__", _html(f"restcn diagnosis: {Path(document['model']).name}"
                                           f" on {Path(document['data']).name} "
                                           f"[{document['split']}]"))
    json_path = atomic_write_text(out / "diagnosis.json",
                                  json.dumps(document, indent=1, allow_nan=False) + "\n")
    html_path = atomic_write_text(out / "report.html", page)
    return json_path, html_path


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))

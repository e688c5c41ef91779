"""Prometheus text exposition format (version 0.0.4), for the box's and the centre's /metrics.

Pure: the callers collect numbers, this writes them out. A metric is a name, a type
(``counter`` or ``gauge``), a help line and its samples (labels → value).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["CONTENT_TYPE", "Metric", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metric:
    name: str
    kind: str  # "counter" | "gauge"
    help: str
    samples: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Metric:
        self.samples.append((labels, value))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render(metrics: Iterable[Metric]) -> str:
    """The exposition text of ``metrics`` (HELP, TYPE, then one line per sample)."""
    lines: list[str] = []
    for m in metrics:
        lines.append(f"# HELP {m.name} {_escape(m.help)}")
        lines.append(f"# TYPE {m.name} {m.kind}")
        for labels, value in m.samples:
            text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
            lines.append(f"{m.name}{{{text}}} {_number(value)}" if text
                         else f"{m.name} {_number(value)}")
    return "\n".join(lines) + "\n"

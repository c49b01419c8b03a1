"""A trained matching model: fit on all records, store as JSON, read back, show.

``crm2erp dedupe train FLOW`` estimates every m, u and lambda of the flow's
matching configuration (values given in the configuration are estimated
again: training replaces them), checks the fit (:func:`check_plausible`:
an implausible fit raises :class:`ImplausibleFit` and nothing is stored) and
stores the result; runs of the flow then use it instead of the
configuration's values and never fit on a batch.

The stored JSON names each comparison with its level labels, so a model
trained for another configuration is refused instead of silently misread.
"""

from __future__ import annotations

__all__ = ["LevelRow", "from_payload", "level_rows", "to_payload", "train"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crm2erp.errors import ConfigError
from crm2erp.quality.dedupe.config import MatchConfig
from crm2erp.quality.dedupe.fellegi_sunter import FSParams
from crm2erp.quality.dedupe.matcher import Matcher

#: a level's weight beyond this many bits is flagged: one field outvoting all others
_EXTREME_BITS = 20.0
_M_FLOOR = 1.001e-3


@dataclass(frozen=True)
class LevelRow:
    """One comparison level of a model: m, u, match weight in bits and a warning, if any."""

    comparison: str
    level: str
    m: float
    u: float
    weight: float
    warning: str = ""


def unfitted(config: MatchConfig) -> MatchConfig:
    """The configuration without m, u and lambda: everything is estimated."""
    comparisons = [c.model_copy(update={"m": None, "u": None}) for c in config.comparisons]
    return config.model_copy(update={"comparisons": comparisons, "lambda_": None})


def train(config: MatchConfig, records: Sequence[Mapping[str, Any]],
          ) -> tuple[FSParams, list[str], int]:
    """Fit m (EM), u (random pairs) and lambda on ``records`` (dedupe mode).

    Returns the parameters, the fit's warnings and the number of candidate
    pairs; raises ImplausibleFit for a fit that must not be used.
    """
    if len(records) < 2:
        raise ConfigError(f"{config.entity}: training needs at least 2 records, found "
                          f"{len(records)}")
    matcher = Matcher(unfitted(config))
    params = matcher.fit(records)
    return params, matcher.fit_warnings, matcher.fit_pairs


def _signature(config: MatchConfig) -> list[dict[str, Any]]:
    return [{"comparison": c.label, "field": c.field, "levels": c.level_labels}
            for c in config.comparisons]


def to_payload(config: MatchConfig, params: FSParams, warnings: Sequence[str]) -> dict:
    """The JSON-able model: per comparison its levels with m and u, then lambda."""
    comparisons = [{**sig, "m": [float(x) for x in m], "u": [float(x) for x in u]}
                   for sig, m, u in zip(_signature(config), params.m, params.u, strict=True)]
    return {"comparisons": comparisons, "lambda": float(params.lambda_),
            "iterations": params.iterations, "converged": bool(params.converged),
            "warnings": list(warnings)}


def from_payload(config: MatchConfig, payload: Mapping[str, Any], flow: str) -> FSParams:
    """Parameters of a stored model; ConfigError when it was trained for other comparisons."""
    stored = [{k: c.get(k) for k in ("comparison", "field", "levels")}
              for c in payload.get("comparisons", [])]
    if stored != _signature(config):
        have = ", ".join(f"{c['comparison']} ({'/'.join(c['levels'])})" for c in stored)
        want = ", ".join(f"{c['comparison']} ({'/'.join(c['levels'])})"
                         for c in _signature(config))
        raise ConfigError(f"flow {flow!r}: the stored matching model was trained for other "
                          f"comparisons ({have}) than the configuration has ({want}); run "
                          f"crm2erp dedupe train {flow} again")
    return FSParams(m=[np.asarray(c["m"], dtype=float) for c in payload["comparisons"]],
                    u=[np.asarray(c["u"], dtype=float) for c in payload["comparisons"]],
                    lambda_=float(payload["lambda"]),
                    iterations=int(payload.get("iterations", 0)),
                    converged=bool(payload.get("converged", True)))


def _warning(level: int, n: int, m: float, u: float, weight: float) -> str:
    last = level == n - 1
    if not last and weight < 0.5:
        return "agreement worth under 0.5 bits: no evidence"
    if abs(weight) > _EXTREME_BITS:
        return f"over {_EXTREME_BITS:g} bits: this level alone decides"
    if not last and m <= _M_FLOOR:
        return "m on its floor: EM saw (almost) no matches at this level"
    return ""


def level_rows(config: MatchConfig, params: FSParams) -> list[LevelRow]:
    """Every comparison level with its m, u, weight log2(m/u) and a warning where implausible."""
    rows = []
    for c, m, u in zip(config.comparisons, params.m, params.u, strict=True):
        for k, label in enumerate(c.level_labels):
            weight = float(np.log2(m[k] / u[k]))
            rows.append(LevelRow(c.label, label, float(m[k]), float(u[k]), weight,
                                 _warning(k, c.n_levels, float(m[k]), float(u[k]), weight)))
    return rows

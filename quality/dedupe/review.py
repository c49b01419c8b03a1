"""A duplicate pair as a steward reviews it, the same in the CLI and the console."""

from __future__ import annotations

__all__ = ["who", "pair_rows", "pair_side", "golden_values"]

import getpass
import os


def who(by: str | None) -> str:
    """Who decides: ``by`` when given, else the OS user."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def pair_rows(pair) -> list[dict]:
    """The rows of a side-by-side view: the compared fields (with their level, score
    and weight), then the other fields either record has. ``left``/``right`` are the
    values (None when absent); ``differs`` says whether they differ."""
    from crm2erp.engine.memory import flatten  # the engine loads only when needed

    left, right = pair.details.get("left", {}), pair.details.get("right", {})
    rows, compared = [], set()
    for f in pair.details.get("fields", []):
        compared.add(f["field"])
        rows.append({"name": f["comparison"], "field": f["field"],
                     "left": f.get("left"), "right": f.get("right"),
                     "level": f.get("label", ""), "score": f.get("score"),
                     "weight": f.get("weight", 0), "compared": True,
                     "differs": f.get("left") != f.get("right")})
    a, b = flatten(left.get("record", {})), flatten(right.get("record", {}))
    for name in [k for k in a if k != "id"] + [k for k in b if k not in a and k != "id"]:
        if name in compared or (a.get(name) in (None, {}) and b.get(name) in (None, {})):
            continue
        rows.append({"name": name, "field": name, "left": a.get(name), "right": b.get(name),
                     "level": "",
                     "score": None, "weight": None, "compared": False,
                     "differs": a.get(name) != b.get(name)})
    return rows


def pair_side(pair, side: str) -> str:
    """A column heading: the record's label, kind, system and source key."""
    rec = pair.details.get(side, {})
    label = pair.left_label if side == "left" else pair.right_label
    return (f"{rec.get('label', label)} ({rec.get('kind', '?')} {rec.get('system') or ''} "
            f"{rec.get('source_key') or ''})").strip()


def golden_values(pair) -> dict:
    """The golden record acceptance would produce, by field path (the steward's
    overrides laid over survivorship's preview); {} when the pair has no preview."""
    from crm2erp.engine.memory import flatten

    preview = pair.details.get("golden")
    if preview is None:
        return {}
    return {**flatten(preview["record"]), **(pair.details.get("overrides") or {})}

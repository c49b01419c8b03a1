"""Check a flow's quality rules with Great Expectations, without data
(``crm2erp mappings validate``).

The gate imports GX and builds a flow's suite only at the first batch with rows
(:mod:`crm2erp.quality.gx.stage`), so a rule GX rejects (a misspelled
``expect_...`` name, wrong arguments) would otherwise surface only then. Here
each rule's expectation is built as the gate builds it
(:func:`~crm2erp.quality.gx.suite.rule_expectation`) and every refusal becomes a
problem at the rule's place in the flow file. Without GX installed, each flow
with rules gets one problem saying its rules were not checked and what to install:
the same configuration error its sync would stop with.
"""

from __future__ import annotations

__all__ = ["rule_issues"]

from collections.abc import Iterable
from typing import Any

from crm2erp.errors import ConfigError, ConfigIssue
from crm2erp.quality.gx.config import PARENT_RULE
from crm2erp.quality.gx.stage import not_installed


def _issue(flow, path: tuple[Any, ...], message: str) -> ConfigIssue:
    try:
        return flow.doc.issue(path, message)
    except ValueError:   # a flow built in code has no positions
        return ConfigIssue(str(flow.source_file or flow.flow), None, None, message)


def _rule_path(flow, index: int) -> tuple[Any, ...]:
    """Where rule ``index`` is in the file: ``quality: [...]`` or ``quality: {rules: [...]}``."""
    try:
        section = flow.doc.data.get("quality")
    except ValueError:
        return ("quality",)
    return ("quality", index) if isinstance(section, list) else ("quality", "rules", index)


def rule_issues(flows: Iterable[Any]) -> list[ConfigIssue]:
    """GX's objections to the rules of ``flows`` (flow specs), each naming flow and rule."""
    flows = [f for f in flows if f.quality is not None and f.quality.rules]
    if not flows:
        return []
    try:
        from crm2erp.quality.gx.suite import flow_checks, rule_expectation
    except ImportError as exc:
        return [_issue(f, ("quality",), f"rules not checked: {not_installed(f, exc)}")
                for f in flows]
    issues = []
    for flow in flows:
        try:
            checks = flow_checks(flow)
        except ConfigError as exc:
            issues.append(_issue(flow, ("quality",), str(exc)))
            continue
        index = {rule.label: n for n, rule in enumerate(flow.quality.rules)}
        for check in checks:
            if check.origin != "flow" or check.expectation == PARENT_RULE:
                continue
            try:
                rule_expectation(check, flow.flow)
            except ConfigError as exc:
                issues.append(_issue(flow, _rule_path(flow, index[check.rule]), str(exc)))
    return issues

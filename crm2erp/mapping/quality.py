"""The ``quality:`` section of a flow: threshold, PII mask and rules.

Part of the mapping language (the flow model validates it); the quality
plug-in (:mod:`crm2erp.quality.gx`) runs it.

This module is plain pydantic (no Great Expectations import), so loading a
project stays fast; the rules become a GX suite only when a flow runs
(:mod:`crm2erp.quality.gx.suite`). A rule names any GX expectation by its
snake_case name (``expect_column_values_to_match_regex``), a short alias
(``not_null``, ``unique``, ``in_set``, ``regex``, ``between``, ``length``) or the
crm2erp rule ``parent_exists`` (referential integrity through the id
cross-reference). ``quality: [rule, ...]`` is shorthand for ``quality: {rules: [...]}``.
"""

from __future__ import annotations

__all__ = ["QualityConfig", "QualityRule", "QualitySection", "SEVERITIES", "SHORT_NAMES",
           "PARENT_RULE", "parse_share"]

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from crm2erp.mapping.conditions import Condition

SEVERITIES = ("critical", "warning", "info")
PARENT_RULE = "parent_exists"

#: short names for the everyday expectations
SHORT_NAMES = {
    "not_null": "expect_column_values_to_not_be_null",
    "unique": "expect_column_values_to_be_unique",
    "in_set": "expect_column_values_to_be_in_set",
    "not_in_set": "expect_column_values_to_not_be_in_set",
    "regex": "expect_column_values_to_match_regex",
    "match_regex": "expect_column_values_to_match_regex",
    "between": "expect_column_values_to_be_between",
    "length": "expect_column_value_lengths_to_be_between",
}


def parse_share(value: Any) -> Any:
    """``"2%"`` -> 0.02; a number from 0 to 1 stays as it is."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected a share like '2%' or 0.02, got {value!r}") from None
    return value


Share = Annotated[
    float,
    BeforeValidator(parse_share),
    Field(ge=0, le=1),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
                              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"}]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QualityRule(_Strict):
    """One expectation on the batch's canonical records.

    ``column`` is a canonical field; nested fields use dots
    (``billing_address.postal_code``). ``kwargs`` go to the expectation as
    they are (``regex``, ``value_set``, ``min_value``...). ``when`` limits the
    rule to the rows that match (same syntax as a mapping's ``where``).
    """

    expect: str = Field(pattern=r"^[a-z][a-z0-9_]*$",
                        description="GX expectation name, a short alias, or parent_exists")
    name: str | None = Field(None, description="Rule name in reports (default: expect(column))")
    column: str | None = Field(None, validation_alias=AliasChoices("column", "field"))
    kwargs: dict[str, Any] = Field(default_factory=dict)
    mostly: float | None = Field(None, gt=0, le=1)
    severity: Literal["critical", "warning", "info"] = "critical"
    when: dict[str, Any] | None = Field(
        None, description="Row filter, the syntax of a mapping's 'where' "
        "({field: type, equals: customer})")
    description: str = ""

    _condition: Any = PrivateAttr(default=None)

    @field_validator("when")
    @classmethod
    def _check_when(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            Condition.model_validate(value)
        return value

    @property
    def condition(self):
        """The ``when`` filter as a :class:`~crm2erp.mapping.models.Condition`."""
        if self.when is not None and self._condition is None:
            self._condition = Condition.model_validate(self.when)
        return self._condition

    @model_validator(mode="after")
    def _check(self) -> QualityRule:
        if self.expect == PARENT_RULE:
            if self.kwargs or self.mostly is not None:
                raise ValueError("parent_exists takes only 'column' (a parent field such "
                                 "as account_id), 'severity' and 'when'")
        elif not (self.expect in SHORT_NAMES or self.expect.startswith("expect_")):
            raise ValueError(f"unknown rule {self.expect!r}: name a Great Expectations "
                             "expectation (expect_...), a short name "
                             f"({', '.join(SHORT_NAMES)}) or {PARENT_RULE}")
        for reserved in ("column", "mostly", "row_condition", "condition_parser"):
            if reserved in self.kwargs:
                raise ValueError(f"'{reserved}' is a key of the rule itself, "
                                 "not of its kwargs")
        return self

    @property
    def expectation(self) -> str:
        """The full GX expectation name (``parent_exists`` for the parent rule)."""
        return SHORT_NAMES.get(self.expect, self.expect)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.expect}({self.column})" if self.column else self.expect


def _rules_shorthand(value: Any) -> Any:
    return {"rules": value} if isinstance(value, list) else value


class QualityConfig(_Strict):
    """A flow's data-quality settings; see ``docs/quality.md``."""

    threshold: Share | None = Field(
        None, description="Stop the run when critical failures exceed this share of the "
        "rows read so far (e.g. '2%'); unset: never stop, only quarantine.")
    mask: list[str] = Field(default_factory=list,
                            description="Fields whose values reports mask (PII).")
    schema_: bool = Field(True, alias="schema",
                          description="Add the expectations derived from the canonical model.")
    sample_size: int = Field(20, ge=1, le=1000,
                             description="Failing values kept per rule and run.")
    rules: list[QualityRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> QualityConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.label in seen:
                raise ValueError(f"two rules are called {rule.label!r}; give one a 'name'")
            seen.add(rule.label)
        return self


QualitySection = Annotated[QualityConfig | None, BeforeValidator(_rules_shorthand)]

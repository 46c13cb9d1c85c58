"""Policy files: TOML ``[[rule]]`` tables, validated by marshmallow schemas into rules.

Pure: :func:`parse_policy` takes the text and a label (how to name the file in messages).
A file is refused whole on its first problem, named as
``<file>: rule "<id>" (rule <n>): field "<name>": <what is wrong>``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate
from marshmallow import validates_schema as _validates_schema

from pds.numbers import TooManyDigits, toml_loads
from pds.policy.errors import PolicyError
from pds.policy.model import ACTIONS, DEFAULT_MIN_BUCKET
from pds.policy.purposes import PURPOSES
from pds.policy.rules import (
    KINDS,
    AggregatesOnly,
    AllowedPurposes,
    DenyCategory,
    DenyPurpose,
    MaxGrant,
    MaxHistory,
    MinBucket,
    RateLimit,
    RedactFields,
    Rule,
)
from pds.vocabulary import CATEGORIES, category_fields

RULE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
REQUIRED = {"required": "is required", "null": "is required"}


class _Int(fields.Integer):
    """A TOML integer (not a float, not a boolean)."""

    default_error_messages = {"invalid": "is not a whole number"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class _Str(fields.String):
    default_error_messages = {"invalid": "is not a text string"}


def _list(inner: fields.Field, **kw: Any) -> fields.List:
    return fields.List(
        inner,
        validate=validate.Length(min=1, error="must name at least one"),
        error_messages={"invalid": "is not a list", **REQUIRED},
        **kw,
    )


def _category(**kw: Any) -> _Str:
    return _Str(
        validate=validate.OneOf(CATEGORIES, error='"{input}" is not a category'),
        error_messages=REQUIRED,
        **kw,
    )


def _purpose(**kw: Any) -> _Str:
    return _Str(
        validate=validate.OneOf(
            sorted(PURPOSES), error='"{input}" is not a purpose pds knows (see docs/policies.md)'
        ),
        error_messages=REQUIRED,
        **kw,
    )


def _actions(**kw: Any) -> fields.List:
    one = _Str(validate=validate.OneOf(ACTIONS, error='"{input}" is not read, write or aggregate'))
    return _list(one, **kw)


def _days(**kw: Any) -> _Int:
    return _Int(
        validate=validate.Range(1, 36500, error="must be from {min} to {max} days"),
        error_messages=REQUIRED,
        **kw,
    )


class _RuleSchema(Schema):
    class Meta:
        unknown = RAISE

    rule_class: type[Rule] = Rule
    id = _Str(
        required=True,
        validate=validate.Regexp(
            RULE_ID,
            error='"{input}" is not a rule id: use lower-case letters, digits and dashes',
        ),
        error_messages=REQUIRED,
    )
    kind = _Str(required=True, error_messages=REQUIRED)
    reason = _Str(
        validate=validate.Length(1, 300, error="must be 1 to 300 characters"),
        error_messages=REQUIRED,
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Rule:
        data.pop("kind")
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = frozenset(value)
        return self.rule_class(**data)


class DenyCategorySchema(_RuleSchema):
    rule_class = DenyCategory
    category = _category(required=True)
    except_clients = _list(_Str(validate=validate.Length(1, 200)))
    actions = _actions()


class DenyPurposeSchema(_RuleSchema):
    rule_class = DenyPurpose
    purpose = _purpose(required=True)
    actions = _actions(required=True)
    category = _category()


class AggregatesOnlySchema(_RuleSchema):
    rule_class = AggregatesOnly
    category = _category()
    purpose = _purpose()

    @_validates_schema
    def _one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "category" not in data and "purpose" not in data:
            raise ValidationError("needs a category, a purpose, or both", "category")


class MaxHistorySchema(_RuleSchema):
    rule_class = MaxHistory
    days = _days(required=True)
    category = _category()


class MaxGrantSchema(_RuleSchema):
    rule_class = MaxGrant
    days = _days(required=True)


class RedactFieldsSchema(_RuleSchema):
    rule_class = RedactFields
    category = _category(required=True)
    fields_ = _list(_Str(validate=validate.Length(1, 100)), required=True, data_key="fields")

    @_validates_schema
    def _known(self, data: dict[str, Any], **kwargs: Any) -> None:
        known = category_fields(data.get("category", ""))
        for name in data.get("fields_", ()) if known is not None else ():
            if name not in known:
                raise ValidationError(
                    f'"{name}" is not a field of {data["category"]}; '
                    f"its fields are {', '.join(known)}",
                    "fields",
                )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Rule:
        data["fields"] = data.pop("fields_")
        return super()._make(data, **kwargs)


class RateLimitSchema(_RuleSchema):
    rule_class = RateLimit
    per_day = _Int(
        required=True,
        validate=validate.Range(1, 10_000_000, error="must be from {min} to {max}"),
        error_messages=REQUIRED,
    )


class AllowedPurposesSchema(_RuleSchema):
    rule_class = AllowedPurposes
    category = _category(required=True)
    purposes = _list(_purpose(), required=True)


class MinBucketSchema(_RuleSchema):
    rule_class = MinBucket
    k = _Int(
        required=True,
        validate=validate.Range(
            DEFAULT_MIN_BUCKET,
            1_000_000,
            error=f"must be at least {DEFAULT_MIN_BUCKET} (the built-in minimum)",
        ),
        error_messages=REQUIRED,
    )
    category = _category()


SCHEMAS: dict[str, type[_RuleSchema]] = {
    s.rule_class.kind: s
    for s in (
        DenyCategorySchema,
        DenyPurposeSchema,
        AggregatesOnlySchema,
        MaxHistorySchema,
        MaxGrantSchema,
        RedactFieldsSchema,
        RateLimitSchema,
        AllowedPurposesSchema,
        MinBucketSchema,
    )
}
assert set(SCHEMAS) == set(KINDS)


def _first(messages: Any) -> str:
    """The first message of a marshmallow error (lists and per-item dicts flattened)."""
    while isinstance(messages, (dict, list)):
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return str(messages)


def _field_error(
    schema: Schema, kind: str, messages: Mapping[str, Any], table: Mapping[str, Any]
) -> str:
    data_keys = {f.data_key or name: name for name, f in schema.fields.items()}
    order = [k for k in table if k in messages] + [k for k in messages if k not in table]
    key = order[0]
    if key not in data_keys and key != "_schema":
        takes = ", ".join(k for k in data_keys if k != "kind")
        return f'field "{key}": is not a field of a {kind} rule; it takes {takes}'
    return f'field "{key}": {_first(messages[key])}'


def parse_rule(table: Any, label: str, number: int) -> Rule:
    """One ``[[rule]]`` table as a Rule, or PolicyError naming the file, rule and field."""
    if not isinstance(table, dict):
        raise PolicyError(f"{label}: rule {number}: is not a table; write it as [[rule]]")
    rid = table.get("id")
    where = f"{label}: rule {number}"
    if isinstance(rid, str) and RULE_ID.match(rid):
        where = f'{label}: rule "{rid}" (rule {number})'
    kind = table.get("kind")
    if kind is None:
        raise PolicyError(f'{where}: field "kind": is required')
    if kind not in SCHEMAS:
        raise PolicyError(
            f'{where}: field "kind": "{kind}" is not a rule kind; use one of ' + ", ".join(SCHEMAS)
        )
    schema = SCHEMAS[kind]()
    try:
        return schema.load(table)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise PolicyError(f"{where}: {_field_error(schema, kind, messages, table)}") from None


def parse_policy(text: str, label: str) -> tuple[Rule, ...]:
    """Every rule of one policy file's text; PolicyError (naming ``label``) refuses it whole."""
    try:
        doc = toml_loads(text)
    except (tomllib.TOMLDecodeError, TooManyDigits) as exc:
        raise PolicyError(f"{label}: not valid TOML: {exc}") from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise PolicyError(f"{label}: arrays or tables are nested too deeply") from None
    for key in doc:
        if key != "rule":
            raise PolicyError(
                f'{label}: unknown top-level key "{key}"; a policy file holds only [[rule]] tables'
            )
    tables = doc.get("rule", [])
    if not isinstance(tables, list):
        raise PolicyError(f'{label}: "rule" must be written as [[rule]] tables')
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for number, table in enumerate(tables, 1):
        rule = parse_rule(table, label, number)
        if rule.id in seen:
            raise PolicyError(
                f'{label}: rule "{rule.id}" (rule {number}): the id "{rule.id}" is already '
                f"used by rule {seen[rule.id]}"
            )
        seen[rule.id] = number
        rules.append(rule)
    return tuple(rules)

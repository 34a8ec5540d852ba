"""Quality checks on an answer: the reasons a cascade climbs to the next tier.

Each check returns None when the answer passes, or a short reason (it lands in the
attempt log and the response headers) when it fails.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from turnout.core import ChatRequest, ConfigError, PythonCheck, RegexCheck, RouteSettings
from turnout.providers import Completion

Check = Callable[[Completion, ChatRequest], str | None]

# Phrases that open a refusal; matched on the answer's start only, lower-cased.
_REFUSAL_OPENERS = (
    "i'm sorry, but i can't",
    "i am sorry, but i can't",
    "i'm sorry, i can't",
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm unable to help",
    "i am unable to help",
    "i can't comply",
    "i cannot comply",
)


def check_empty(answer: Completion, request: ChatRequest) -> str | None:
    if answer.tool_calls:
        return None
    return "empty" if not (answer.content or "").strip() else None


def check_refusal(answer: Completion, request: ChatRequest) -> str | None:
    if answer.refusal or answer.finish_reason == "content_filter":
        return "refusal"
    opening = (answer.content or "").strip().lower()[:60].replace("\u2019", "'")
    return "refusal" if opening.startswith(_REFUSAL_OPENERS) else None


def check_truncated(answer: Completion, request: ChatRequest) -> str | None:
    # A cap the caller set is theirs to hit; without one, "length" means an unfinished answer.
    if answer.finish_reason == "length" and request.output_limit is None:
        return "truncated"
    return None


def check_json_schema(answer: Completion, request: ChatRequest) -> str | None:
    if not request.wants_json or answer.tool_calls:
        return None
    try:
        parsed = orjson.loads(answer.content or "")
    except orjson.JSONDecodeError:
        return "invalid_json"
    schema = request.json_schema
    if schema is None:
        return None if isinstance(parsed, dict) else "invalid_json"
    import jsonschema

    try:
        jsonschema.validate(parsed, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "answer"
        return f"schema_mismatch:{where}"
    except jsonschema.SchemaError:
        return None  # the caller's schema is broken; the upstream already saw it
    return None


# In the order they run: a refusal is named as such even when its content is empty.
_BUILTIN: dict[str, Check] = {
    "refusal": check_refusal,
    "empty": check_empty,
    "truncated": check_truncated,
    "json_schema": check_json_schema,
}


@dataclass(frozen=True)
class _Regex:
    pattern: re.Pattern[str]

    def __call__(self, answer: Completion, request: ChatRequest) -> str | None:
        if answer.tool_calls:
            return None
        return None if self.pattern.search(answer.content or "") else "regex_mismatch"


@dataclass(frozen=True)
class _Python:
    name: str
    func: Callable[[str, dict[str, Any]], bool | str | None]

    def __call__(self, answer: Completion, request: ChatRequest) -> str | None:
        verdict = self.func(answer.content or "", request.model_dump(exclude_none=True))
        if verdict is True or verdict is None:
            return None
        return f"check:{self.name}" if verdict is False else f"check:{self.name}:{verdict}"


def _load_callable(spec: str, key: str) -> Callable[[str, dict[str, Any]], bool | str | None]:
    module_name, _, attr = spec.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"{key}: cannot load check {spec!r} ({exc}); expected 'module:function'"
        ) from exc
    if not callable(func):
        raise ConfigError(f"{key}: {spec!r} is not callable")
    return func  # type: ignore[no-any-return]


def build_checks(route: RouteSettings, key: str) -> tuple[Check, ...]:
    checks: list[Check] = [check for name, check in _BUILTIN.items() if name in route.checks]
    for i, custom in enumerate(route.require):
        where = f"{key}.require[{i}]"
        if isinstance(custom, RegexCheck):
            try:
                checks.append(_Regex(re.compile(custom.regex)))
            except re.error as exc:
                raise ConfigError(f"{where}.regex: not a valid regular expression ({exc})") from exc
        elif isinstance(custom, PythonCheck):
            name = custom.python.rpartition(":")[2]
            checks.append(_Python(name, _load_callable(custom.python, where)))
    return tuple(checks)


DEFAULT_CHECKS: tuple[Check, ...] = tuple(_BUILTIN.values())


def first_failure(checks: Sequence[Check], answer: Completion, request: ChatRequest) -> str | None:
    for check in checks:
        reason = check(answer, request)
        if reason is not None:
            return reason
    return None

"""OpenAI chat requests as Anthropic Messages bodies, and Anthropic's answers, stream
events and usage back in OpenAI's shape: a pure translation."""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core import (
    ChatRequest,
    ImagePart,
    InvalidImageError,
    InvalidInputError,
    Message,
    TextPart,
    UnsupportedMediaError,
    Usage,
)

from ._base import Completion
from ._http import malformed
from ._media import is_remote, split_data_uri
from ._openai_shape import ChunkMaker, tool_choice_mode, translated

DEFAULT_MAX_TOKENS = 4096
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_CHOICE_TYPES = {"auto": "auto", "required": "any", "none": "none"}
REFUSED = "the model declined to answer (stop_reason: refusal)"


def json_instruction(request: ChatRequest) -> str | None:
    """What to ask for in words: Anthropic has no response_format; the gateway validates."""
    if (schema := request.json_schema) is not None:
        return (
            "Answer with a single JSON value that matches this JSON schema, and nothing "
            "else (no prose, no code fences):\n" + orjson.dumps(schema).decode()
        )
    if request.wants_json:
        return "Answer with a single JSON object, and nothing else (no prose, no code fences)."
    return None


def anthropic_request(
    request: ChatRequest, model: str, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        if message.role in ("system", "developer"):
            if text := message.text():
                system.append(text)
            continue
        blocks = _blocks(message, i)
        if not blocks:
            continue
        role = "assistant" if message.role == "assistant" else "user"
        # Tool results come back as a user turn; parallel results share one.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    if instruction := json_instruction(request):
        system.append(instruction)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.output_limit or default_max_tokens,  # required by Anthropic
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0 to 1
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.tools:
        body["tools"] = [_tool(tool, i) for i, tool in enumerate(request.tools)]
        choice = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is False and choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = choice
    if request.user:
        body["metadata"] = {"user_id": request.user}
    return body


def _blocks(message: Message, index: int) -> list[dict[str, Any]]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise InvalidInputError(f"messages[{index}]: a tool message needs tool_call_id")
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text()}
        ]
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            blocks.append({"type": "text", "text": message.content})
    else:
        for part in message.content or ():
            if isinstance(part, TextPart):
                if part.text:  # Anthropic refuses empty text blocks
                    blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                blocks.append(_image(part.image_url.url))
            else:
                raise UnsupportedMediaError(
                    f"messages[{index}]: Anthropic's Messages API takes no audio input"
                )
    for j, call in enumerate(message.tool_calls or ()):
        blocks.append(_tool_use(call, f"messages[{index}].tool_calls[{j}]"))
    return blocks


def _image(url: str) -> dict[str, Any]:
    if (inline := split_data_uri(url)) is not None:
        media_type, data = inline
        if not media_type.startswith("image/"):
            raise InvalidImageError(f"an image data URI has media type {media_type!r}")
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if is_remote(url):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidImageError(f"image_url must be a data: URI or an http(s) URL, got {url[:40]!r}")


def _tool_use(call: dict[str, Any], where: str) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise InvalidInputError(f"{where}: a tool call needs id and function.name")
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{where}.function.arguments is not JSON ({exc})") from exc
    if not isinstance(arguments, dict):
        raise InvalidInputError(f"{where}.function.arguments must be a JSON object")
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}


def _tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise InvalidInputError(f"tools[{index}]: only function tools can be sent to Anthropic")
    if not function.get("name"):
        raise InvalidInputError(f"tools[{index}].function.name is required")
    spec: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return spec


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any]:
    mode, name = tool_choice_mode(choice or "auto")
    return {"type": "tool", "name": name} if name else {"type": _CHOICE_TYPES[mode]}


def usage_from_anthropic(raw: Any) -> Usage:
    """Anthropic's input_tokens leave out cache reads and writes; turnout's include them."""
    if not isinstance(raw, dict):
        return Usage()
    cached = _count(raw.get("cache_read_input_tokens"))
    written = _count(raw.get("cache_creation_input_tokens"))
    return Usage(
        text_input_tokens=_count(raw.get("input_tokens")) + cached + written,
        cached_input_tokens=cached,
        output_tokens=_count(raw.get("output_tokens")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _index(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {
            "name": str(block.get("name") or ""),
            "arguments": orjson.dumps(block.get("input") or {}).decode(),
        },
    }


def completion_from_anthropic(provider: str, data: Any, model: str) -> Completion:
    blocks = data.get("content") if isinstance(data, dict) else None
    if not isinstance(blocks, list):
        raise malformed(provider, "no content list")
    texts, calls = [], []
    for block in blocks:
        if not isinstance(block, dict):
            raise malformed(provider, "a content block is not an object")
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append(_tool_call(block))
    text = "".join(texts)
    content = None if calls and not text else text  # as OpenAI answers a bare tool call
    finish = _FINISH.get(str(data.get("stop_reason")), "stop")
    refusal = (text or REFUSED) if data.get("stop_reason") == "refusal" else None
    usage = usage_from_anthropic(data.get("usage"))
    return translated(
        model=model,
        content=content,
        tool_calls=calls,
        finish_reason=finish,
        usage=usage,
        refusal=refusal,
    )


class AnthropicStream:
    """Folds Anthropic's stream events into OpenAI chunks, keeping usage and finish."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.chunk = ChunkMaker(model)
        self.usage_seen: dict[str, Any] = {}
        self.finish: str | None = None
        self.stopped = False
        self._tools: dict[int, int] = {}  # content block index -> OpenAI tool_calls index

    @property
    def usage(self) -> Usage:
        return usage_from_anthropic(self.usage_seen)

    def feed(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, dict):
            raise malformed(self.provider, "stream event is not an object")
        kind = data.get("type")
        if kind == "message_start":
            self._add_usage((data.get("message") or {}).get("usage"))
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(data.get("index"), data.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(data.get("index"), data.get("delta"))
        if kind == "message_delta":
            self._add_usage(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish = _FINISH.get(str(reason), "stop")
                return [self.chunk({}, self.finish)]
        elif kind == "message_stop":
            self.stopped = True
        return []  # ping, content_block_stop, and event types added after this was written

    def _add_usage(self, usage: Any) -> None:
        # message_delta repeats running totals, so later counts replace earlier ones.
        if isinstance(usage, dict):
            self.usage_seen.update({k: v for k, v in usage.items() if v is not None})

    def _block_start(self, index: Any, block: Any) -> list[dict[str, Any]]:
        if not isinstance(block, dict):
            raise malformed(self.provider, "content_block_start without a content_block")
        if block.get("type") == "tool_use":
            self._tools[_index(index)] = position = len(self._tools)
            call = {**_tool_call(block), "index": position}
            call["function"]["arguments"] = ""  # the input arrives as input_json_delta
            return [self.chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self.chunk({"content": block["text"]})]
        return []

    def _block_delta(self, index: Any, delta: Any) -> list[dict[str, Any]]:
        if not isinstance(delta, dict):
            raise malformed(self.provider, "content_block_delta without a delta")
        if delta.get("type") == "text_delta":
            return [self.chunk({"content": str(delta.get("text") or "")})]
        if delta.get("type") == "input_json_delta":
            position = self._tools.get(_index(index))
            if position is None:
                raise malformed(self.provider, "input_json_delta for no tool_use block")
            piece = {"index": position, "function": {"arguments": delta.get("partial_json", "")}}
            return [self.chunk({"tool_calls": [piece]})]
        return []  # thinking and signature deltas stay upstream

"""OpenAI chat requests as Gemini `generateContent` bodies: a pure translation.

Gemini cannot fetch arbitrary image URLs, so the adapter fetches them first
(`remote_image_urls` says which) and hands the bytes in as `InlineData`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from turnout.core import (
    ChatRequest,
    ImagePart,
    InvalidImageError,
    InvalidInputError,
    Message,
    TextPart,
)

from ._media import is_remote, split_data_uri
from ._openai_shape import tool_choice_mode

_ROLES = {"user": "user", "assistant": "model", "tool": "user"}
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}
_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


@dataclass(frozen=True)
class InlineData:
    """Media carried inside the request, base64-encoded."""

    mime_type: str
    data: str

    def part(self) -> dict[str, Any]:
        return {"inlineData": {"mimeType": self.mime_type, "data": self.data}}


def remote_image_urls(request: ChatRequest) -> list[str]:
    """The http(s) image URLs the adapter must fetch before translating, each once."""
    urls: dict[str, None] = {}
    for message in request.messages:
        for image in message.images():
            if is_remote(image.image_url.url):
                urls[image.image_url.url] = None
    return list(urls)


def gemini_request(request: ChatRequest, fetched: Mapping[str, InlineData]) -> dict[str, Any]:
    """The `generateContent` body for `request`; `fetched` holds its remote images."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(request.messages):
        if message.role in ("system", "developer"):
            if text := message.text():
                system.append({"text": text})
            continue
        parts = _parts(message, i, fetched, call_names)
        if not parts:
            continue
        role = _ROLES[message.role]
        # Gemini wants one turn per role change: parallel tool results share a turn.
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if config := generation_config(request):
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": _declarations(request.tools)}]
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    return body


def generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.output_limit is not None:
        config["maxOutputTokens"] = request.output_limit
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.seed is not None:
        config["seed"] = request.seed
    if request.wants_json:
        config["responseMimeType"] = "application/json"
    if (schema := request.json_schema) is not None:
        # responseJsonSchema takes JSON Schema as is; responseSchema takes an OpenAPI subset.
        config["responseJsonSchema"] = schema
    return config


def _parts(
    message: Message, index: int, fetched: Mapping[str, InlineData], call_names: dict[str, str]
) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [_function_response(message, index, call_names)]
    parts: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            parts.append({"text": message.content})
    else:
        for part in message.content or ():
            if isinstance(part, TextPart):
                parts.append({"text": part.text})
            elif isinstance(part, ImagePart):
                parts.append(_image(part, fetched).part())
            else:
                audio = part.input_audio
                parts.append(InlineData(_AUDIO_MIME[audio.format], audio.data).part())
    for j, call in enumerate(message.tool_calls or ()):
        parts.append(_function_call(call, f"messages[{index}].tool_calls[{j}]", call_names))
    return parts


def _image(part: ImagePart, fetched: Mapping[str, InlineData]) -> InlineData:
    url = part.image_url.url
    if (inline := split_data_uri(url)) is not None:
        media_type, data = inline
        if not media_type.startswith("image/"):
            raise InvalidImageError(f"an image data URI has media type {media_type!r}")
        return InlineData(media_type, data)
    if is_remote(url):
        if url not in fetched:
            raise InvalidImageError(f"image {url!r} was not fetched before translation")
        return fetched[url]
    raise InvalidImageError(f"image_url must be a data: URI or an http(s) URL, got {url[:40]!r}")


def _function_call(call: dict[str, Any], where: str, call_names: dict[str, str]) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not function.get("name"):
        raise InvalidInputError(f"{where}: a tool call needs function.name")
    name = str(function["name"])
    if call.get("id"):
        call_names[str(call["id"])] = name
    part: dict[str, Any] = {"functionCall": {"name": name, "args": _arguments(function, where)}}
    # Gemini 3 refuses a function-call history without the signature it sent with the call.
    google = (call.get("extra_content") or {}).get("google") or {}
    if signature := google.get("thought_signature"):
        part["thoughtSignature"] = signature
    return part


def _arguments(function: dict[str, Any], where: str) -> dict[str, Any]:
    raw = function.get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{where}.function.arguments is not JSON ({exc})") from exc
    if not isinstance(args, dict):
        raise InvalidInputError(f"{where}.function.arguments must be a JSON object")
    return args


def _function_response(message: Message, index: int, call_names: dict[str, str]) -> dict[str, Any]:
    name = call_names.get(message.tool_call_id or "") or message.name
    if not name:
        raise InvalidInputError(
            f"messages[{index}]: tool_call_id {message.tool_call_id!r} matches no earlier "
            "assistant tool call (Gemini needs the function's name)"
        )
    text = message.text()
    try:
        result: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        result = text
    # Gemini's convention: a JSON object, with the function's output under "output".
    response = result if isinstance(result, dict) else {"output": result}
    return {"functionResponse": {"name": name, "response": response}}


def _declarations(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    declarations = []
    for i, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise InvalidInputError(f"tools[{i}]: only function tools can be sent to Gemini")
        if not function.get("name"):
            raise InvalidInputError(f"tools[{i}].function.name is required")
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            # JSON Schema as OpenAI clients write it (additionalProperties and all).
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return declarations


def _calling_config(choice: str | dict[str, Any]) -> dict[str, Any]:
    mode, name = tool_choice_mode(choice)
    if name:
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    return {"mode": _CHOICE_MODES[mode]}

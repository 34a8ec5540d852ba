"""The one typed settings object: a YAML file plus `TURNOUT_*` environment variables.

Precedence, highest first: environment variables, the YAML file, defaults. The file is
`turnout.yaml` in the working directory when present, or the path given to
`load_settings` (the CLI's `--config`) or in `TURNOUT_CONFIG`. Nothing is read at import.
Nested keys come from the environment with a double underscore:
`TURNOUT_GATEWAY__PORT=8080` sets `gateway.port`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ._errors import ConfigError
from ._gateway_settings import ListenSettings, ProviderSettings, RouteSettings
from ._governance_settings import GovernanceSettings
from ._index_settings import IndexSettings
from ._search_settings import SearchSettings
from ._telemetry_settings import TelemetrySettings

ENV_PREFIX = "TURNOUT_"
DEFAULT_CONFIG_NAME = "turnout.yaml"

# The YAML mapping being loaded; set only for the duration of `load_settings`.
_file_data: ContextVar[dict[str, Any] | None] = ContextVar("turnout_settings_file", default=None)


class _YamlData(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_file_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_data.get() or {})


class Settings(BaseSettings):
    """Every setting turnout reads. Each field's description is its documentation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    home: Path = Field(
        default=Path("~/.turnout"),
        description="Directory for turnout's data (ledger, indexes, caches).",
    )
    catalog_files: list[Path] = Field(
        default_factory=list,
        description="Extra model catalog YAML files merged over the shipped catalog, in order.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level of log line written."
    )
    gateway: ListenSettings = Field(
        default_factory=ListenSettings, description="The gateway's listener and request limits."
    )
    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict, description="Upstream model providers, by the name routes use."
    )
    routes: dict[str, RouteSettings] = Field(
        default_factory=dict, description="Routes clients name in `model`: tiers, rules, checks."
    )
    governance: GovernanceSettings = Field(
        default_factory=GovernanceSettings,
        description="Tenants, keys, the ledger, budgets, rate limits and alerts.",
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings,
        description="Traces (OTLP), Prometheus metrics and the per-request record.",
    )
    index: IndexSettings = Field(
        default_factory=IndexSettings,
        description="Vector indexes: backend (edge, server, faiss), paths, search options.",
    )
    search: SearchSettings = Field(
        default_factory=SearchSettings,
        description="The gateway's search endpoints, uploads, thumbnails and their encoders.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlData(settings_cls))

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()


def resolve_config_path(
    config: Path | str | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    env = os.environ if environ is None else environ
    if config is not None:
        return Path(config)
    if env.get(f"{ENV_PREFIX}CONFIG"):
        return Path(env[f"{ENV_PREFIX}CONFIG"])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    expanded: dict[str, Any] = _expand(data, path, "")
    return expanded


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, path: Path, key: str) -> Any:
    """`${VAR}` and `${VAR:-default}` in string values, from the environment."""
    if isinstance(value, dict):
        return {k: _expand(v, path, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: key {key!r}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}})"
        )

    return _VAR.sub(substitute, value)


def _explain(exc: ValidationError, path: Path | None, file_keys: set[str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        top = str(err["loc"][0]) if err["loc"] else ""
        env_name = ENV_PREFIX + "__".join(str(p) for p in err["loc"]).upper()
        if env_name in os.environ or (f"{ENV_PREFIX}{top.upper()}" in os.environ):
            where = f"environment variable {env_name}"
        elif path is not None and top in file_keys:
            where = str(path)
        else:
            where = "settings"
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key {key!r}")
        else:
            lines.append(f"{where}: key {key!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Read and validate settings; a bad value raises ConfigError naming file and key."""
    path = resolve_config_path(config)
    data = _read_config(path) if path is not None else {}
    token = _file_data.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path, set(data))) from exc
    finally:
        _file_data.reset(token)

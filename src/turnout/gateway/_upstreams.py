"""The configured upstreams: a provider client per provider, a breaker and a catalog card
per deployment, and the settle step that turns a provider's usage into exact cost."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from turnout.core import (
    Catalog,
    ConfigError,
    Deployment,
    ModelCard,
    ProviderSettings,
    RouteSettings,
    TurnoutError,
    Usage,
    cost,
    count_image_tokens,
)
from turnout.providers import Provider, build_provider

from ._intake import RequestFacts
from ._resilience import CircuitBreaker


@dataclass
class Upstream:
    deployment: Deployment
    provider: Provider
    settings: ProviderSettings
    card: ModelCard
    breaker: CircuitBreaker


class Upstreams:
    def __init__(self, providers: dict[str, Provider], by_label: dict[str, Upstream]) -> None:
        self.providers = providers
        self._by_label = by_label

    @classmethod
    def build(
        cls,
        providers: dict[str, ProviderSettings],
        routes: dict[str, RouteSettings],
        catalog: Catalog,
    ) -> Upstreams:
        clients: dict[str, Provider] = {}
        by_label: dict[str, Upstream] = {}
        for route_name, route in routes.items():
            for t, tier in enumerate(route.tiers):
                for d, dep in enumerate(tier.deployments):
                    key = f"routes.{route_name}.tiers[{t}].deployments[{d}]"
                    settings = providers.get(dep.provider)
                    if settings is None:
                        raise ConfigError(
                            f"{key}.provider: unknown provider {dep.provider!r}; "
                            f"configured: {', '.join(providers) or 'none'}"
                        )
                    if dep.catalog_id not in catalog:
                        raise ConfigError(
                            f"{key}: model {dep.catalog_id!r} is not in the catalog, so its "
                            "cost is unknown; set `catalog:` to a catalog id or add the model "
                            "to a catalog file"
                        )
                    if dep.provider not in clients:
                        clients[dep.provider] = build_provider(
                            settings.kind,
                            dep.provider,
                            settings.base_url,
                            settings.api_key.get_secret_value() if settings.api_key else None,
                            headers=settings.headers,
                            max_connections=settings.max_connections,
                            **_kind_options(settings),
                        )
                    if dep.label not in by_label:
                        by_label[dep.label] = Upstream(
                            dep,
                            clients[dep.provider],
                            settings,
                            catalog.get(dep.catalog_id),
                            CircuitBreaker(settings.circuit),
                        )
        return cls(clients, by_label)

    def get(self, deployment: Deployment) -> Upstream:
        return self._by_label[deployment.label]

    def all(self) -> list[Upstream]:
        return list(self._by_label.values())

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


def _kind_options(settings: ProviderSettings) -> dict[str, object]:
    if settings.kind == "gemini":
        return {"allow_private_image_urls": settings.allow_private_image_urls}
    return {}


def estimate_image_tokens(card: ModelCard, facts: RequestFacts) -> int:
    """Image tokens by the model's own rule, for the images whose size turnout knows."""
    total = 0
    for image in facts.images:
        if image.width and image.height:
            try:
                total += count_image_tokens(card, image.width, image.height, image.detail).tokens
            except TurnoutError:
                continue  # a model without an image rule: its provider's count stands
    return total


def settle(
    card: ModelCard, usage: Usage, facts: RequestFacts, reported: bool
) -> tuple[Usage, Decimal]:
    """Usage with image tokens split out where the provider folds them into text, and its cost."""
    if not reported and facts.images:
        moved = min(estimate_image_tokens(card, facts), usage.text_input_tokens)
        usage = replace(
            usage,
            text_input_tokens=usage.text_input_tokens - moved,
            image_input_tokens=usage.image_input_tokens + moved,
        )
    return usage, cost(usage, card).exact

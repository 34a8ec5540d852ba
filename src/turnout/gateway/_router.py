"""Which ladder a request climbs, and from which rung it starts.

A client names a route (`auto`, `docqa`) or a concrete model. A route's rules look at
the request's facts (images, text length, JSON schema, tools) and pick the starting tier;
a concrete model bypasses routing and gets a one-tier ladder of its deployments.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout.core import ChatRequest, NotFoundError, RouteSettings, Rule, Tier

from ._intake import RequestFacts


class RouteNotFoundError(NotFoundError):
    def __init__(self, name: str, offered: list[str]) -> None:
        self.name = name
        super().__init__(
            f"the model {name!r} does not exist on this gateway; "
            f"routes and models offered: {', '.join(offered) or 'none'} (GET /v1/models)"
        )


@dataclass(frozen=True)
class Plan:
    route: str
    pattern: str
    tiers: tuple[Tier, ...]
    start: int
    why: str
    settings: RouteSettings | None  # None when a concrete model bypassed routing

    @property
    def ladder(self) -> tuple[Tier, ...]:
        return self.tiers[self.start :]


def _holds(rule: Rule, request: ChatRequest, facts: RequestFacts) -> bool:
    when = rule.when
    n_images = len(facts.images)
    checks = (
        when.images is None or when.images == (n_images > 0),
        when.min_images is None or n_images >= when.min_images,
        when.min_image_pixels is None or facts.largest_image_pixels >= when.min_image_pixels,
        when.min_text_chars is None or facts.text_chars >= when.min_text_chars,
        when.json_schema is None or when.json_schema == (request.json_schema is not None),
        when.tools is None or when.tools == facts.has_tools,
    )
    return all(checks)


class Router:
    def __init__(self, routes: dict[str, RouteSettings]) -> None:
        self._routes = routes
        # A concrete model name -> every deployment serving it, in route order, deduplicated.
        self._models: dict[str, Tier] = {}
        for route in routes.values():
            for tier in route.tiers:
                for dep in tier.deployments:
                    for name in (dep.model, dep.label):
                        known = self._models.get(name)
                        deps = [*known.deployments] if known else []
                        if dep not in deps:
                            deps.append(dep)
                        self._models[name] = Tier(name=name, deployments=deps)

    def offered(self) -> tuple[list[str], list[str]]:
        return list(self._routes), sorted({n for n in self._models if "/" not in n})

    def plan(self, request: ChatRequest, facts: RequestFacts) -> Plan:
        route = self._routes.get(request.model)
        if route is not None:
            names = [t.name for t in route.tiers]
            for i, rule in enumerate(route.rules):
                if _holds(rule, request, facts):
                    return Plan(
                        request.model,
                        route.pattern,
                        tuple(route.tiers),
                        names.index(rule.start),
                        f"rules[{i}]",
                        route,
                    )
            return Plan(request.model, route.pattern, tuple(route.tiers), 0, "default", route)
        tier = self._models.get(request.model)
        if tier is not None:
            return Plan(request.model, "direct", (tier,), 0, "model named", None)
        routes, models = self.offered()
        raise RouteNotFoundError(request.model, routes + models)

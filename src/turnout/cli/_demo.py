"""`turnout demo`: what exists today, run on images it generates itself."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._context import CliState, console, usd

if TYPE_CHECKING:
    from rich.console import Console

    from turnout.core import Settings
    from turnout.providers.standin import StandInServer

# (file name, size, what it stands for)
_IMAGES = (
    ("thumbnail.png", (256, 256), "a product thumbnail"),
    ("screenshot.png", (1920, 1080), "a laptop screenshot"),
    ("phone-photo.jpg", (4032, 3024), "a 12 MP phone photo"),
    ("scanned-page.png", (2550, 3300), "a page scanned at 300 dpi"),
)
_MODELS = (
    "gpt-4o",
    "gpt-4.1-mini",
    "claude-sonnet-4-5",
    "gemini-2.5-flash",
    "gemini-3-pro-preview",
)
# Built and tested, but not part of this demo's run yet (README: how to try each).
_NOT_SHOWN = (
    "document QA through the rag pattern, with checked citations, and visual search "
    "(`/v1/search`, uploads, thumbnails): README, 'Document QA and visual search'",
    "hybrid document retrieval with OCR and `turnout eval docqa`: README, "
    "'Hybrid document retrieval'",
)


def _generate(folder: Path) -> list[Path]:
    from PIL import Image, ImageDraw

    paths = []
    for name, (w, h), _ in _IMAGES:
        image = Image.new("RGB", (w, h), (235, 232, 224))
        draw = ImageDraw.Draw(image)
        for y in range(h // 10, h, max(h // 24, 8)):  # lines of "text" on a page
            draw.rectangle((w // 12, y, w - w // 12, y + max(h // 120, 2)), fill=(60, 60, 70))
        path = folder / name
        image.save(path, quality=85) if name.endswith(".jpg") else image.save(path)
        paths.append(path)
    return paths


def demo(ctx: typer.Context) -> None:
    """Show what turnout does today: the catalog, recommendations, image-token accounting."""
    from rich.table import Table

    from turnout.core import Detail, Usage, cost, count_image_tokens, load_shapes, read_image_size
    from turnout.core import recommend as rank

    state: CliState = ctx.obj
    out = console()
    catalog = state.catalog
    out.rule("[bold]turnout demo[/bold]")
    providers = sorted({m.provider for m in catalog})
    out.print(
        f"catalog: {len(catalog)} models from {', '.join(providers)} (`turnout catalog list`)"
    )

    with tempfile.TemporaryDirectory(prefix="turnout-demo-") as tmp:
        paths = _generate(Path(tmp))
        sizes = []
        for path in paths:
            with path.open("rb") as fh:
                sizes.append(read_image_size(fh, name=path.name))
    out.rule("image tokens and cost per image, sizes read from each file's header (detail=high)")
    table = Table()
    table.add_column("model")
    for (_, _, what), size in zip(_IMAGES, sizes, strict=True):
        table.add_column(f"{what}\n{size.width}x{size.height}", justify="right")
    for model_id in _MODELS:
        model = catalog.get(model_id)
        cells = []
        for size in sizes:
            n = count_image_tokens(model, size.width, size.height, Detail.HIGH).tokens
            each = cost(Usage(image_input_tokens=n, requests=0), model).exact
            cells.append(f"{n:,} tok  {usd(each)}")
        table.add_row(model_id, *cells)
    out.print(table)

    page = sizes[-1]
    out.rule("the seed's incident, priced: a 487-page scan uploaded 56 times (image tokens only)")
    for model_id in _MODELS:
        model = catalog.get(model_id)
        seen: set[int] = set()
        for detail in (Detail.HIGH, Detail.LOW):
            n = count_image_tokens(model, page.width, page.height, detail).tokens * 487
            if n in seen:  # the rule ignores detail for this model
                continue
            seen.add(n)
            c = cost(Usage(image_input_tokens=n, requests=0), model)
            out.print(
                f"  {model_id:<22} detail={detail.value:<4} {n:>10,} tokens per upload  "
                f"{usd(c.total):>12} per upload  {usd(c.total * 56):>12} for 56"
            )

    for shape_id in ("assistant", "docqa", "visual-search"):
        shape = load_shapes()[shape_id]
        result = rank(catalog, shape)
        out.rule(f"recommend --shape {shape_id}")
        for i, pick in enumerate(result.ranked[:3], 1):
            out.print(
                f"  {i}. {pick.model.id:<34} {usd(pick.cost.exact):>12}/query  p95 {pick.p95:g} s"
            )
        out.print(
            f"  ({len(result.dropped)} dropped, each with its reason: "
            f"`turnout recommend --shape {shape_id}`)"
        )

    _gateway_round(out)

    out.rule("built, not in this demo yet")
    for line in _NOT_SHOWN:
        out.print(f"  - {line}")


def _gateway_round(out: Console) -> None:
    """A gateway on loopback in front of the stand-in provider: routing, escalation, failover."""
    import httpx

    from turnout.core import Settings
    from turnout.gateway import BackgroundGateway
    from turnout.providers.standin import Reply, StandInServer

    out.rule("the gateway, against a simulated provider (answers and prices are not real)")
    with StandInServer() as upstream, tempfile.TemporaryDirectory(prefix="turnout-demo-") as home:
        fast = {"attempts": 1, "base_delay_s": 0.05}
        settings = Settings.model_validate(
            {
                "home": home,  # a fresh ledger, thrown away after the demo
                "providers": {
                    "openai": {"kind": "openai", "base_url": upstream.url + "/v1", "retry": fast},
                    "backup": {"kind": "openai", "base_url": upstream.url + "/v1", "retry": fast},
                },
                "routes": {
                    "auto": {
                        "tiers": [
                            {
                                "name": "cheap",
                                "deployments": [
                                    {"provider": "openai", "model": "gpt-4.1-mini"},
                                    {
                                        "provider": "backup",
                                        "model": "gpt-4.1-mini-eu",
                                        "catalog": "gpt-4.1-mini",
                                    },
                                ],
                            },
                            {
                                "name": "strong",
                                "deployments": [{"provider": "openai", "model": "gpt-4.1"}],
                            },
                        ],
                        "rules": [{"when": {"json_schema": True}, "start": "strong"}],
                    }
                },
            }
        )
        cases = [
            ("a plain question", [], {}),
            ("the cheap answer comes back empty", [("gpt-4.1-mini", Reply(content=""))], {}),
            (
                "the cheap answer is a refusal",
                [("gpt-4.1-mini", Reply(content="I'm sorry, but I can't help with that."))],
                {},
            ),
            (
                "the primary provider is down (503)",
                [("gpt-4.1-mini", Reply(status=503, times=2))],
                {},
            ),
            (
                "a JSON schema is required",
                [("gpt-4.1", Reply(content='{"city": "Oslo"}'))],
                {
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {
                            "name": "c",
                            "schema": {"type": "object", "required": ["city"]},
                        },
                    }
                },
            ),
        ]
        key, thrifty = _tenants(settings)
        with BackgroundGateway(settings, simulated=True) as gateway:
            auth = {"authorization": f"Bearer {key}"}
            for label, script, extra in cases:
                for model, reply in script:
                    upstream.script.push(model, reply)
                body = {
                    "model": "auto",
                    "messages": [{"role": "user", "content": "Capital of Norway?"}],
                    **extra,
                }
                r = httpx.post(
                    f"{gateway}/v1/chat/completions", json=body, headers=auth, timeout=30
                )
                out.print(
                    f"  {label:<36} {r.status_code}  {r.headers['x-turnout-model']:<24} "
                    f"${r.headers['x-turnout-cost-usd']}  ({r.headers['x-turnout-attempt-log']})",
                    markup=False,
                )
            _governance_round(out, gateway, upstream, thrifty, settings)
    out.print("  try it: `turnout serve --config examples/gateway.yaml` (README: The gateway)")


def _tenants(settings: Settings) -> tuple[str, str]:
    """Two tenants in the demo's ledger: one unlimited, one with a $0.01 daily budget."""
    from decimal import Decimal

    from turnout.gateway.governance import Database, Policy, TenantDirectory, ledger_url

    db = Database.open(ledger_url(settings))
    directory = TenantDirectory(db)
    directory.create_tenant("demo", None, Policy())
    directory.create_tenant(
        "thrifty", None, Policy(daily_budget_usd=Decimal("0.01"), image_token_cap=1000)
    )
    key, _ = directory.create_key("demo", "demo")
    thrifty, _ = directory.create_key("thrifty", "demo", user_id="mallory")
    db.close()
    return key, thrifty


def _governance_round(
    out: Console, gateway: str, upstream: StandInServer, key: str, settings: Settings
) -> None:
    """Tenant `thrifty` ($0.01 a day, 1,000 image tokens a request) meets its limits."""
    import base64
    import io

    import httpx
    from PIL import Image

    from turnout.gateway.governance import Database, ledger_url
    from turnout.gateway.governance._reports import spend_report
    from turnout.providers.standin import Reply

    out.rule("governance: tenant `thrifty`, $0.01 a day, at most 1,000 image tokens a request")
    auth = {"authorization": f"Bearer {key}"}
    buffer = io.BytesIO()
    Image.new("RGB", (2048, 2048), (200, 200, 200)).save(buffer, "PNG")
    photo = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    image = {"type": "image_url", "image_url": {"url": photo, "detail": "high"}}
    body = {
        "model": "auto",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}],
    }
    r = httpx.post(f"{gateway}/v1/chat/completions", json=body, headers=auth, timeout=30)
    out.print(
        f"  a 2048x2048 photo at detail=high: {r.status_code}, "
        f"{r.headers.get('x-turnout-image-cap', 'under the cap')}",
        markup=False,
    )
    upstream.script.push("gpt-4.1-mini", Reply(completion_tokens=1000, times=None))
    text = {"model": "auto", "max_tokens": 1000, "messages": [{"role": "user", "content": "Go"}]}
    for i in range(1, 9):
        r = httpx.post(f"{gateway}/v1/chat/completions", json=text, headers=auth, timeout=30)
        if r.status_code != 200:
            message = r.json()["error"]["message"]
            out.print(
                f"  request {i}: {r.status_code} {r.json()['error']['code']}: {message}",
                markup=False,
            )
            break
        out.print(f"  request {i}: 200, ${r.headers['x-turnout-cost-usd']}", markup=False)
    db = Database.open(ledger_url(settings))
    report = spend_report(db, by="tenant")
    db.close()
    for row in report["rows"]:
        out.print(
            f"  ledger: tenant {row['tenant']:<8} {row['requests']} requests, "
            f"{row['refused']} refused, ${row['cost_usd']}",
            markup=False,
        )

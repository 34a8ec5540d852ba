"""`turnout demo`, start to end: providers, a fresh home, a corpus indexed, a gateway on
embedded defaults, two tenants, the workload, the summary, then the gateway left running."""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from . import _workload as work
from ._corpus import (
    HANDBOOK,
    HANDBOOK_QUESTIONS,
    PHOTOS,
    POLICY_QUESTIONS,
    SCAN_PAGES,
    SCAN_SIZE,
    Corpus,
    make_corpus,
)
from ._providers import DemoProviders, from_environment, simulated
from ._summary import Summary

if TYPE_CHECKING:
    from rich.console import Console

    from turnout.providers.standin import Script

# The stand-in's latency per model (seconds before the answer): the stage timings then
# look like a cheap and a strong model's rather than loopback's.
_SIMULATED_DELAY = {"gpt-4.1-mini": 0.12, "gpt-4.1": 0.3}
# (tenant, policy, [(key name, user)])
_TENANTS: tuple[tuple[str, dict[str, Any], list[tuple[str, str]]], ...] = (
    (
        "acme",
        {"daily_budget_usd": "5.00", "image_token_cap": 20_000, "alert_thresholds": [50, 80]},
        [("alice", "alice"), ("bob", "bob")],
    ),
    (
        "globex",
        {
            "daily_budget_usd": "1.00",
            "image_token_cap": 40_000,
            "alert_thresholds": [50, 80, 100],
        },
        [("analyst", "dana"), ("batch-ingest", "batch-ingest")],
    ),
)


@dataclass(frozen=True)
class DemoOptions:
    home: Path | None = None
    serve: bool = True
    host: str = "127.0.0.1"
    port: int | None = None
    encoder: str | None = None  # a real CLIP or SigLIP (hub id or folder) for the photos


def run_demo(options: DemoOptions, out: Console) -> Summary:
    _require_extras()
    real = from_environment()
    with contextlib.ExitStack() as stack:
        script: Script | None = None
        if real is None:
            from turnout.core import load_catalog
            from turnout.providers.standin import Reply, StandInServer, catalog_billing

            upstream = stack.enter_context(StandInServer())
            script = upstream.script
            script.bill = catalog_billing(load_catalog())
            for model, delay in _SIMULATED_DELAY.items():
                script.defaults[model] = Reply(delay=delay)
            providers = simulated(upstream.url)
        else:
            providers = real
        _banner(out, providers)
        home = _fresh_home(options.home)
        out.print(f"demo home: {home} (ledger, indexes, gateway.log; kept after the demo)")
        summary = _run(options, out, providers, script, home, stack)
    return summary


def _require_extras() -> None:
    import importlib.util

    from turnout.core import ConfigError

    needed = ("openai", "fpdf", "skimage", "transformers", "qdrant_edge", "sentence_transformers")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"turnout demo needs {', '.join(missing)}: pip install 'turnout[demo]' "
            "(`make demo` installs everything it needs)"
        )


def _banner(out: Console, providers: DemoProviders) -> None:
    out.rule("[bold]turnout demo[/bold]")
    if providers.simulated:
        out.print(
            "[bold reverse] SIMULATED PROVIDERS [/bold reverse] no OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY, GEMINI_API_KEY or TURNOUT_DEMO_BASE_URL is set, so every "
            "answer, token count and price below comes from turnout's stand-in upstream, "
            "not a real model. Set one of them to run this demo against a real provider."
        )
    out.print(f"providers: {providers.description}")
    for note in providers.notes:
        out.print(f"note: {note}")


def _fresh_home(home: Path | None) -> Path:
    from turnout.core import InvalidInputError

    if home is None:
        return Path(tempfile.mkdtemp(prefix="turnout-demo-"))
    home = home.expanduser().resolve()
    if home.exists() and any(home.iterdir()):
        raise InvalidInputError(
            f"--home {home}: not empty; the demo needs a fresh home (an empty or new folder)"
        )
    home.mkdir(parents=True, exist_ok=True)
    return home


def _run(
    options: DemoOptions,
    out: Console,
    providers: DemoProviders,
    script: Script | None,
    home: Path,
    stack: contextlib.ExitStack,
) -> Summary:
    import httpx

    from turnout.core import Settings
    from turnout.gateway import BackgroundGateway

    started = time.monotonic()
    out.rule("corpus: photographs, a handbook and a policy (PDFs), a 487-page scan")
    corpus = make_corpus(home / "corpus")
    encoder = options.encoder or _standin_encoder(home, out)
    admin_key = "adm-" + secrets.token_urlsafe(18)
    settings = Settings.model_validate(_settings(home, providers, encoder, admin_key, options))
    gold = _index(settings, corpus, encoder, out)
    _log_to_file(home / "gateway.log", stack)

    gateway = BackgroundGateway(settings, options.host, options.port, simulated=providers.simulated)
    url = stack.enter_context(gateway)
    out.print(f"gateway: {url} (SQLite ledger, Qdrant Edge indexes, in-process limits)")
    admin = stack.enter_context(
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {admin_key}"}, timeout=30)
    )
    keys = _tenants(admin, out)

    acme = [work.client(url, keys["alice"]), work.client(url, keys["bob"])]
    dana, batch = work.client(url, keys["analyst"]), work.client(url, keys["batch-ingest"])
    out.rule("workload, through the official openai SDK")
    seen = work.text_questions(acme, script)
    out.print(f"text questions (route auto), acme: {seen.describe()}")
    seen = work.image_questions(acme, corpus)
    out.print(f"image questions, 4 sizes x low/high/auto detail, acme: {seen.describe()}")
    seen = work.document_questions(acme[0], HANDBOOK_QUESTIONS, script, miss=1, gold=gold)
    out.print(f"document questions (route docqa, the rag pattern), acme: {seen.describe()}")
    for line in seen.lines:
        out.print(f"  {line}", markup=False)
    uploaded = work.upload(url, keys["analyst"], "docs", corpus.policy)
    out.print(
        f"globex uploads {corpus.policy.name} to collection docs: "
        f"{uploaded['items']} items indexed (acme never sees them)"
    )
    seen = work.document_questions(dana, POLICY_QUESTIONS, script)
    out.print(f"document question, globex: {seen.describe()}")
    for line in seen.lines:
        out.print(f"  {line}", markup=False)
    seen = work.visual_searches(acme[1], corpus)
    standin = "" if options.encoder else " (stand-in encoder: arbitrary order)"
    out.print(f"visual searches over the photos{standin}: {seen.describe()}")
    for line in seen.lines:
        out.print(f"  {line}", markup=False)
    out.rule("the incident: globex's batch job re-sends a 487-page scan at detail=high")
    seen = work.incident(batch, corpus.scan_pages)
    for line in seen.lines:
        out.print(f"  {line}", markup=False)
    out.print(f"  the batch job's requests: {seen.describe()}")
    _unchecked(out, providers)

    summary = _read_summary(settings, url)
    summary.render(out)
    (home / "summary.json").write_bytes(orjson.dumps(summary.data, option=orjson.OPT_INDENT_2))
    out.print(
        f"workload and summary took {time.monotonic() - started:.0f} s; "
        f"the summary as JSON: {home / 'summary.json'}"
    )
    if options.serve:
        _serve(out, url, admin_key, keys)
    return summary


def _unchecked(out: Console, providers: DemoProviders) -> None:
    """What the loop would have cost with nothing to stop it, priced from the catalog."""
    from turnout.core import Usage, cost, count_image_tokens, load_catalog

    card = load_catalog().get(providers.strong.get("catalog") or providers.strong["model"])
    per_page = count_image_tokens(card, *SCAN_SIZE, "high").tokens
    upload = cost(Usage(image_input_tokens=per_page * SCAN_PAGES, requests=0), card).total
    out.print(
        f"  unchecked, at the catalog's price for {card.id}: {per_page:,} image tokens a page, "
        f"${upload:.2f} a pass over the scan, ${upload * 56:,.2f} for the seed's 56 passes, "
        "every day the job runs",
        markup=False,
    )


def _standin_encoder(home: Path, out: Console) -> str:
    from turnout.retrieval import quiet_transformers
    from turnout.retrieval.standin import build_standin_clip, words_of

    from ._workload import VISUAL_QUERIES

    words = words_of(" ".join([c for _, c in PHOTOS] + list(VISUAL_QUERIES)))
    quiet_transformers()
    folder = build_standin_clip(home / "encoders" / "standin-clip", words)
    out.print(
        "photos encoder: a stand-in CLIP with random weights, built just now (no CLIP or "
        "SigLIP weights can be fetched offline), so visual search rankings are arbitrary; "
        "--encoder openai/clip-vit-base-patch32 (or a local folder) for a real one"
    )
    return str(folder)


def _settings(
    home: Path, providers: DemoProviders, encoder: str, admin_key: str, options: DemoOptions
) -> dict[str, Any]:
    tiers = [
        {"name": "cheap", "deployments": [providers.cheap]},
        {"name": "strong", "deployments": [providers.strong]},
    ]
    return {
        "home": str(home),
        "gateway": {"host": options.host},
        "providers": providers.providers,
        "routes": {
            "auto": {
                "description": "cheap model first; the strong one when a check fails",
                "tiers": tiers,
                "rules": [
                    {"when": {"json_schema": True}, "start": "strong"},
                    {"when": {"min_image_pixels": 4_000_000}, "start": "strong"},
                ],
                "checks": ["empty", "refusal", "truncated", "json_schema"],
            },
            "docqa": {
                "description": "answers from the tenant's documents, citing pages",
                "pattern": "rag",
                "retrieval": {"collection": "docs", "k": 2, "attach": "both", "detail": "low"},
                "tiers": tiers,
                "checks": ["empty", "refusal", "citations"],
                # every answer judged off the request path, locally: grounding in the
                # retrieved text by MiniLM similarity (no judge model, no cost)
                "judge": {"every": 1},
            },
        },
        "search": {"encoder": encoder, "text_encoder": "minilm"},
        "governance": {"admin_key": admin_key, "require_keys": True},
    }


def _index(settings: Any, corpus: Corpus, encoder: str, out: Console) -> dict[int, str]:
    """What `turnout index add` does, for tenant acme: the photos (with their captions) and
    the handbook, whose page text is searched by MiniLM and BM25. Returns the handbook's
    page item ids by page number, as the gateway names them (the gold pages of the
    document questions)."""
    from turnout.gateway.retrieval import public_id
    from turnout.retrieval import (
        EncoderOptions,
        load_encoder,
        load_text_encoder,
        quiet_transformers,
    )
    from turnout.retrieval.index import DocumentOptions, create_collection, index_sources

    quiet_transformers()
    clip = load_encoder(encoder, EncoderOptions(batch_size=8, workers=0))
    minilm = load_text_encoder("minilm")
    with create_collection(
        settings, "photos", clip.dim, encoder=clip, freshness_slo_s=3600
    ) as photos:
        report = index_sources(photos, clip, [corpus.photos], tenant="acme")
    out.print(
        f"indexed collection photos (tenant acme): {len(PHOTOS)} photographs and their "
        f"captions, {report.items_written} items"
    )
    documents = DocumentOptions(
        text_encoder="minilm", text_fingerprint=minilm.fingerprint, images=False, ocr=False
    )
    with create_collection(
        settings, "docs", minilm.dim, encoder=minilm, documents=documents, freshness_slo_s=3600
    ) as docs:
        report = index_sources(docs, minilm, [corpus.handbook], tenant="acme")
    out.print(
        f"indexed collection docs (tenant acme): {corpus.handbook.name}, {len(HANDBOOK)} "
        f"pages, {report.items_written} items (page text in passages, for MiniLM and BM25)"
    )
    # A page's item id is its source and `#p<number>` (the index's convention), which is
    # what the rag path reports as retrieved, whichever passage of the page matched.
    source = str(corpus.handbook.resolve())
    return {n: public_id("docs", f"{source}#p{n}") for n in range(1, len(HANDBOOK) + 1)}


def _log_to_file(path: Path, stack: contextlib.ExitStack) -> None:
    """The gateway's log lines (one JSON line per request) to a file, not the terminal."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("turnout")
    saved = (root.handlers[:], root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False

    def restore() -> None:
        handler.close()
        root.handlers[:], root.level, root.propagate = saved

    stack.callback(restore)


def _tenants(admin: Any, out: Console) -> dict[str, str]:
    keys = {}
    for tenant, policy, users in _TENANTS:
        made = admin.post("/admin/tenants", json={"id": tenant, "policy": policy})
        made.raise_for_status()
        for name, user in users:
            key = admin.post(f"/admin/tenants/{tenant}/keys", json={"name": name, "user": user})
            key.raise_for_status()
            keys[name] = str(key.json()["key"])
        out.print(
            f"tenant {tenant}: ${policy['daily_budget_usd']} a day, at most "
            f"{policy['image_token_cap']:,} image tokens a request, alerts at "
            f"{', '.join(f'{t}%' for t in policy['alert_thresholds'])}; keys for "
            f"{', '.join(user for _, user in users)}"
        )
    return keys


def _read_summary(settings: Any, url: str) -> Summary:
    """Wait for the gateway's request records and judgments to reach the ledger (both are
    written off the request path), then read the summary back."""
    import httpx
    from sqlalchemy import func, select

    from turnout.gateway.governance import Database, ledger_url
    from turnout.gateway.governance._schema import judgments, ledger, requests

    db = Database.open(ledger_url(settings))
    try:
        deadline, last = time.monotonic() + 10, (-1, -1, -1)
        while time.monotonic() < deadline:
            with db.engine.connect() as conn:
                recorded = conn.execute(select(func.count()).select_from(requests)).scalar_one()
                open_ = conn.execute(
                    select(func.count()).where(ledger.c.state == "reserved")
                ).scalar_one()
                judged = conn.execute(select(func.count()).select_from(judgments)).scalar_one()
            if (recorded, open_, judged) == last and open_ == 0:
                break
            last = (recorded, open_, judged)
            time.sleep(0.5)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        return Summary.read(db, metrics)
    finally:
        db.close()


def _serve(out: Console, url: str, admin_key: str, keys: dict[str, str]) -> None:
    out.rule("the gateway keeps running")
    # soft_wrap: keys and commands stay on one line, whole, for copying
    out.print(f"dashboard: {url}/dashboard  (admin key: {admin_key})", markup=False, soft_wrap=True)
    out.print(f"OpenAI base URL: {url}/v1", markup=False, soft_wrap=True)
    out.print(f"acme's key for alice: {keys['alice']}", markup=False, soft_wrap=True)
    body = '{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
    out.print(
        f"curl {url}/v1/chat/completions -H \"authorization: Bearer {keys['alice']}\" -d '{body}'",
        markup=False,
        soft_wrap=True,
    )
    out.print("Ctrl-C stops it.")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (a service manager, `kill`) stops it as cleanly as Ctrl-C; SIGINT is reset in
    # case a shell started the demo in the background with it ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    out.print("stopped; the demo home stays for inspection")

"""The dashboard: one HTML page of Plotly charts over the ledger and the stored signals.

GET /dashboard                 the page (no data in it; it asks for the admin key)
GET /dashboard/data?days=14    the charts' data as JSON (admin key), see `dashboard_data`
GET /dashboard/plotly.min.js   Plotly.js as shipped in the `plotly` wheel (no CDN)

The key: the page keeps it in sessionStorage and sends it as `Authorization: Bearer` on
the data fetch. A cookie set from `?key=` would put the key in URLs (history, proxy logs,
Referer) and make every admin route reachable by cross-site requests; a header the page
adds itself has neither problem and reuses `require_admin` unchanged. The key is gone when
the tab closes.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from turnout.core import ConfigError, InvalidInputError, Settings

from .._admin import require_admin
from ..governance import Database, LedgerUnavailableError
from ._dashboard_data import MAX_DAYS, Freshness, dashboard_data

_SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"
    ),
}


class _PlotlyScript:
    """plotly.min.js from the installed `plotly` package, read and gzipped once, on first
    use (4.8 MB raw, about 1.4 MB gzipped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._raw: bytes | None = None
        self._gzipped: bytes | None = None

    def load(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._raw is None or self._gzipped is None:
                self._raw = self.path().read_bytes()
                self._gzipped = gzip.compress(self._raw, compresslevel=6, mtime=0)
            return self._raw, self._gzipped

    @staticmethod
    def path() -> Path:
        from importlib.util import find_spec

        # Located, not imported: only its bundled Plotly.js is used (no CDN here).
        spec = find_spec("plotly")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("the dashboard needs the `plotly` package: pip install 'plotly>=5'")
        return Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"

    @staticmethod
    def installed_version() -> str:
        from importlib.metadata import version

        return version("plotly")


def _days(request: Request) -> int:
    raw = request.query_params.get("days", "14")
    try:
        days = int(raw)
    except ValueError:
        raise InvalidInputError(f"days: {raw!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInputError(f"days: {days} is not between 1 and {MAX_DAYS}")
    return days


def dashboard_routes(
    settings: Settings, db: Database, freshness: Freshness | None = None, simulated: bool = False
) -> APIRouter:
    """The dashboard's routes. `freshness` returns [{collection, age_s, slo_s}] for the
    index freshness chart; `simulated` puts a 'simulated providers' banner on the page."""
    router = APIRouter()
    script = _PlotlyScript()
    page = PAGE.replace("{{PLOTLY_VERSION}}", _PlotlyScript.installed_version())

    @router.get("/dashboard")
    async def dashboard_page() -> Response:
        return HTMLResponse(page, headers=_SECURITY_HEADERS)

    @router.get("/dashboard/data")
    async def dashboard_json(request: Request) -> Response:
        require_admin(settings, request)
        days = _days(request)

        def compute() -> dict[str, Any]:
            try:
                return dashboard_data(db, days=days, freshness=freshness)
            except SQLAlchemyError as exc:
                raise LedgerUnavailableError(
                    f"the dashboard could not read the ledger: {exc}"
                ) from exc

        # A thread of its own, not db.run: on SQLite that pool is the single thread every
        # budget reservation waits on, and a dashboard query takes up to a second.
        data = await asyncio.to_thread(compute)
        data["simulated"] = simulated
        return Response(
            orjson.dumps(data), media_type="application/json", headers=_SECURITY_HEADERS
        )

    @router.get("/dashboard/plotly.min.js")
    async def plotly_js(request: Request) -> Response:
        raw, gzipped = await asyncio.to_thread(script.load)
        # The page asks for ?v=<plotly version>, so an upgrade changes the URL: safe to
        # let browsers keep it for a year.
        headers = {
            "cache-control": "public, max-age=31536000, immutable",
            "vary": "accept-encoding",
        }
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["content-encoding"] = "gzip"
            return Response(gzipped, media_type="text/javascript", headers=headers)
        return Response(raw, media_type="text/javascript", headers=headers)

    return router


# The page carries no data: it asks for the admin key, then fetches dashboard/data. Paths
# are relative so the page also works when the gateway sits under a path prefix.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>turnout dashboard</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center;
           padding: 12px 20px; background: #1d2330; color: #fff; }
  header h1 { font-size: 18px; margin: 0 12px 0 0; }
  header .summary { opacity: .85; }
  header select, header button { font: inherit; }
  .banner { background: #fff3cd; color: #664d03; padding: 8px 20px; font-weight: 600; }
  .error { background: #f8d7da; color: #58151c; padding: 8px 20px; }
  #login { max-width: 420px; margin: 80px auto; background: #fff; padding: 24px;
           border-radius: 8px; box-shadow: 0 1px 4px #0002; }
  #login input { width: 100%; box-sizing: border-box; padding: 8px; margin: 8px 0; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
          gap: 14px; padding: 14px 20px; }
  .chart { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px #0002; height: 340px; }
  .chart.wide { grid-column: 1 / -1; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>turnout dashboard</h1>
  <span class="summary" id="summary">loading</span>
  <label>window <select id="days">
    <option value="1">1 day</option><option value="7">7 days</option>
    <option value="14" selected>14 days</option><option value="30">30 days</option>
    <option value="90">90 days</option></select></label>
  <button id="refresh" type="button">refresh</button>
  <button id="logout" type="button">forget key</button>
</header>
<div id="simulated" class="banner" hidden>simulated providers: every answer, token count and
  cost on this page comes from stand-in upstreams, not real model calls</div>
<div id="error" class="error" hidden></div>
<form id="login" hidden>
  <label for="key"><b>Admin key</b> (governance.admin_key): kept in this tab only</label>
  <input id="key" type="password" autocomplete="off" required>
  <button type="submit">open dashboard</button>
</form>
<main id="grid" hidden>
  <div class="chart wide" id="chart-cost-tenant"></div>
  <div class="chart" id="chart-cost-pattern"></div>
  <div class="chart" id="chart-cost-model"></div>
  <div class="chart" id="chart-tiers"></div>
  <div class="chart" id="chart-escalations"></div>
  <div class="chart wide" id="chart-stages"></div>
  <div class="chart" id="chart-image-tokens"></div>
  <div class="chart" id="chart-satisfaction"></div>
  <div class="chart" id="chart-judged"></div>
  <div class="chart" id="chart-recall"></div>
  <div class="chart" id="chart-freshness"></div>
</main>
<script src="dashboard/plotly.min.js?v={{PLOTLY_VERSION}}"></script>
<script>
"use strict";
const KEY = "turnout.dashboard.adminKey";
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);
const MAX_TENANTS = 8;

function showError(message) { $("error").textContent = message; $("error").hidden = !message; }

function askKey(message) {
  sessionStorage.removeItem(KEY);
  $("grid").hidden = true;
  $("login").hidden = false;
  $("summary").textContent = "";
  showError(message || "");
  $("key").focus();
}

// Draw one chart; with no traces it says why instead of showing bare axes.
function plot(id, title, traces, xTitle, yTitle, extra, emptyText) {
  const empty = traces.length === 0;
  const layout = Object.assign({
    title: { text: title, font: { size: 15 } },
    margin: { t: 48, r: 16, b: 56, l: 64 },
    xaxis: { title: { text: xTitle }, automargin: true },
    yaxis: { title: { text: yTitle }, automargin: true, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.25 },
    paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  }, extra || {});
  if (empty) {
    layout.annotations = [{ text: emptyText || "no data in this window", showarrow: false,
      xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 16, color: "#888" } }];
    layout.xaxis = Object.assign({}, layout.xaxis, { showticklabels: false, zeroline: false });
    layout.yaxis = Object.assign({}, layout.yaxis, { showticklabels: false, zeroline: false });
  }
  $(id).dataset.empty = empty ? "1" : "0";
  // No mode bar: it sits on top of the titles; zoom by dragging still works.
  return Plotly.react(id, traces, layout, { responsive: true, displayModeBar: false });
}

function costPerTenant(d) {
  const traces = [];
  d.cost_per_tenant.slice(0, MAX_TENANTS).forEach((t, i) => {
    const color = COLORS[i % COLORS.length];
    traces.push({ type: "scatter", mode: "lines+markers", name: t.tenant, x: d.days,
                  y: t.cost_usd, line: { color } });
    if (t.daily_budget_usd !== null) {
      traces.push({ type: "scatter", mode: "lines", name: t.tenant + " budget",
        x: [d.days[0], d.days[d.days.length - 1]],
        y: [t.daily_budget_usd, t.daily_budget_usd], line: { color, dash: "dash", width: 1.5 } });
    }
  });
  const more = d.cost_per_tenant.length - MAX_TENANTS;
  const title = "Cost per tenant per day (dashed: daily budget)" +
    (more > 0 ? " - top " + MAX_TENANTS + ", " + more + " more not shown" : "");
  return plot("chart-cost-tenant", title, traces, "day", "USD");
}

function bars(id, title, rows, key, value, xTitle, yTitle, opts) {
  opts = opts || {};
  if (rows.length === 0) return plot(id, title, [], xTitle, yTitle, null, opts.empty);
  const trace = { type: "bar", x: rows.map((r) => r[key]), y: rows.map((r) => value(r)),
                  marker: { color: opts.color || COLORS[0] } };
  if (opts.text) { trace.text = rows.map(opts.text); trace.textposition = "auto"; }
  return plot(id, title, [trace], xTitle, yTitle, opts.layout);
}

function stages(d) {
  const rows = d.stages.rows;
  const title = "Latency per stage, p50 and p95 (last " +
    d.stages.sampled_requests.toLocaleString() + " requests)";
  if (rows.length === 0) return plot("chart-stages", title, [], "stage", "ms");
  const x = rows.map((r) => r.stage);
  return plot("chart-stages", title, [
    { type: "bar", name: "p50", x, y: rows.map((r) => r.p50_ms), marker: { color: COLORS[0] } },
    { type: "bar", name: "p95", x, y: rows.map((r) => r.p95_ms), marker: { color: COLORS[1] } },
  ], "stage", "ms (log scale)", { barmode: "group", yaxis: { title: { text: "ms (log scale)" },
    type: "log", dtick: 1, automargin: true } });
}

function imageTokens(d) {
  const traces = d.image_tokens.series.map((s, i) => ({
    type: "bar", name: s.detail + " (" + s.tokens_per_image + " tokens/image)", x: d.days,
    y: s.image_tokens, marker: { color: COLORS[i % COLORS.length] } }));
  return plot("chart-image-tokens", "Image tokens per day by detail level", traces, "day",
              "image tokens", { barmode: "stack" }, "no images in this window");
}

function lines(id, title, series, yTitle, extra, emptyText, days) {
  const traces = series.filter((s) => s.x.length > 0).map((s, i) => ({
    type: "scatter", mode: "lines+markers", name: s.name, x: s.x, y: s.y,
    connectgaps: false, line: { color: COLORS[i % COLORS.length] } }));
  // The whole window on a date axis, half a day either side: with points on one day only,
  // Plotly would otherwise zoom to a millisecond around it.
  const edge = (day, hours) => new Date(Date.parse(day + "T00:00:00Z") + hours * 3600e3)
    .toISOString().replace("T", " ").slice(0, 16);
  const span = { showlegend: true, xaxis: { title: { text: "day" }, automargin: true,
    type: "date", range: [edge(days[0], -12), edge(days[days.length - 1], 12)] } };
  return plot(id, title, traces, "day", yTitle, Object.assign(span, extra), emptyText);
}

function judged(d) {
  const days = d.judged.map((r) => r.day);
  const series = ["faithfulness", "relevance", "grounding"].map((name) => ({
    name, x: days, y: d.judged.map((r) => r[name]) }))
    .filter((s) => s.y.some((v) => v !== null));
  return lines("chart-judged", "Judged answer quality (daily mean, sampled requests)", series,
               "score (0 to 1)", { yaxis: { title: { text: "score (0 to 1)" }, range: [0, 1.05] } },
               "no judged requests in this window", d.days);
}

function recall(d) {
  const series = d.recall.map((s) => ({ name: "recall@" + (s.k === null ? "?" : s.k),
    x: s.points.map((p) => p.day), y: s.points.map((p) => p.recall) }));
  return lines("chart-recall", "Retrieval recall@k (requests that named gold ids)", series,
               "recall", { yaxis: { title: { text: "recall" }, range: [0, 1.05] } },
               "no requests with gold ids in this window", d.days);
}

function freshness(d) {
  const f = d.freshness;
  const title = "Index freshness (age of newest data; diamonds: SLO)";
  if (f.collections.length === 0) {
    return plot("chart-freshness", title, [], "collection", "age (minutes)", null,
                f.error ? "index freshness unavailable: " + f.error : "no collections");
  }
  const x = f.collections.map((c) => c.collection);
  const traces = [{ type: "bar", name: "age", x, y: f.collections.map((c) => c.age_s / 60),
    marker: { color: f.collections.map((c) => (c.stale ? "#d62728" : "#2ca02c")) } }];
  const slo = f.collections.filter((c) => c.slo_s !== null);
  if (slo.length) {
    traces.push({ type: "scatter", mode: "markers", name: "SLO", x: slo.map((c) => c.collection),
      y: slo.map((c) => c.slo_s / 60), marker: { symbol: "diamond", size: 12, color: "#1d2330" } });
  }
  return plot("chart-freshness", title, traces, "collection", "age (minutes)");
}

function render(d) {
  $("login").hidden = true;
  $("grid").hidden = false;
  $("simulated").hidden = !d.simulated;
  const s = d.summary;
  const failed = s.requests ? (100 * s.failed / s.requests).toFixed(1) : "0.0";
  $("summary").textContent = s.requests.toLocaleString() + " requests, $" +
    s.cost_usd.toFixed(2) + ", " + failed + "% failed, " + d.days[0] + " to " +
    d.days[d.days.length - 1] + " (generated " + d.generated_at.slice(0, 19) + "Z)";
  const pct = (r) => 100 * r.share;
  return Promise.all([
    costPerTenant(d),
    bars("chart-cost-pattern", "Cost by pattern", d.cost_by_pattern, "key",
         (r) => r.cost_usd, "pattern", "USD"),
    bars("chart-cost-model", "Cost by model", d.cost_by_model.slice(0, 15), "key",
         (r) => r.cost_usd, "model", "USD", { color: COLORS[4] }),
    bars("chart-tiers", "Share of traffic by answering tier", d.tiers, "tier", pct, "tier",
         "% of requests", { color: COLORS[2], text: (r) => r.requests.toLocaleString() }),
    bars("chart-escalations", "Escalations by reason", d.escalations, "reason",
         (r) => r.count, "reason", "escalations", { color: COLORS[3],
         empty: "no escalations in this window" }),
    stages(d),
    imageTokens(d),
    bars("chart-satisfaction", "Satisfaction by modality (share of thumbs up)",
         d.satisfaction, "modality", (r) => 100 * r.share_up, "modality", "% thumbs up",
         { color: COLORS[9], text: (r) => r.thumbs_up + "/" + r.ratings,
           layout: { yaxis: { title: { text: "% thumbs up" }, range: [0, 100] } },
           empty: "no feedback in this window" }),
    judged(d),
    recall(d),
    freshness(d),
  ]);
}

async function load() {
  const key = sessionStorage.getItem(KEY);
  if (!key) { askKey(); return; }
  document.body.dataset.ready = "0";
  let response;
  try {
    response = await fetch("dashboard/data?days=" + encodeURIComponent($("days").value),
                           { headers: { Authorization: "Bearer " + key } });
  } catch (err) { showError("cannot reach the gateway: " + err); return; }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  const message = body && body.error ? body.error.message : "HTTP " + response.status;
  if (response.status === 401 || response.status === 403) { askKey(message); return; }
  if (!response.ok) { showError("the dashboard data failed: " + message); return; }
  showError("");
  await render(body);
  document.body.dataset.ready = "1";  // every chart drawn (tests and the benchmark wait on it)
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value);
  $("key").value = "";
  load();
});
$("refresh").addEventListener("click", load);
$("days").addEventListener("change", load);
$("logout").addEventListener("click", () => askKey("key forgotten"));
if (typeof Plotly === "undefined") showError("dashboard/plotly.min.js did not load");
else load();
</script>
</body>
</html>
"""

/**
 * The live page's browser script, served as /assets/page.js. Plain ES2020 kept as a string so the
 * bundled daemon carries it (no files to find at runtime). It builds every element with
 * textContent; the only HTML it inserts is the report, which the server rendered and escaped.
 */
// biome-ignore lint/complexity/noUselessStringRaw: raw, so a "\n" written in the browser code stays a JS escape.
export const PAGE_JS = String.raw`"use strict";
(function () {
  var STATE_COLOURS = {
    healthy: "#15803d", suspect: "#f59e0b", frozen: "#b91c1c", down: "#b91c1c",
    exhausted: "#7f1d1d", recovering: "#1d4ed8", starting: "#6b7280"
  };
  var HOUR_S = 3600;
  var page = { snapshot: null, history: {}, cards: {}, incidents: [], openReport: null, source: null };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fetchJson(url) {
    return fetch(url, { cache: "no-store" }).then(function (res) {
      if (!res.ok) throw new Error(url + ": HTTP " + res.status);
      return res.json();
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function clock(wall) {
    var d = new Date(wall);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function dateTime(wall) {
    var d = new Date(wall);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + clock(wall);
  }
  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + (s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function gib(bytes) { return (bytes / 1073741824).toFixed(1); }
  // The daemon measures with performance.now(): fractions of a millisecond are noise on the page.
  function millis(ms) { return Math.round(ms) + " ms"; }
  function duration(ms) { return ms < 1000 ? millis(ms) : ago(ms); }
  function nowWall() {
    return page.snapshot && page.snapshot.lastTickWall ? page.snapshot.lastTickWall : Date.now();
  }

  function fact(list, label) {
    var wrap = el("div");
    wrap.appendChild(el("dt", "", label));
    var value = el("dd");
    wrap.appendChild(value);
    list.appendChild(wrap);
    return value;
  }

  function chartBlock(parent, title, legend) {
    var block = el("div", "chart");
    block.appendChild(el("h3", "", title));
    var box = el("div", "chart-box");
    block.appendChild(box);
    if (legend) {
      var keys = el("div", "legend");
      legend.forEach(function (item) {
        var key = el("span", "", item[0]);
        key.style.setProperty("--swatch", item[1]);
        keys.appendChild(key);
      });
      block.appendChild(keys);
    }
    parent.appendChild(block);
    return box;
  }

  function bandsPlugin(card) {
    return {
      hooks: {
        draw: function (u) {
          var points = page.history[card.name] || [];
          var ctx = u.ctx;
          var top = u.bbox.top, height = u.bbox.height;
          var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
          function band(startMs, endMs, state) {
            // Whole pixels: fractional edges of adjacent bands would show as faint stripes.
            var x0 = Math.max(left, Math.floor(u.valToPos(startMs / 1000, "x", true)));
            var x1 = Math.min(right, Math.ceil(u.valToPos(endMs / 1000, "x", true)));
            if (x1 < x0) return;
            ctx.fillStyle = STATE_COLOURS[state] || "#6b7280";
            ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
          }
          ctx.save();
          for (var i = 0; i < points.length; i++) {
            var start = points[i].wall;
            var end = i + 1 < points.length ? points[i + 1].wall : nowWall();
            band(start, Math.min(end, start + card.gapS * 1000), points[i].state);
          }
          // History buckets hold the worst state of several ticks when ticks are frequent; since the
          // page opened it saw every tick, so that stretch is drawn tick by tick over the buckets.
          var runs = card.live;
          for (var j = 0; j < runs.length; j++) {
            var run = runs[j], next = runs[j + 1];
            var joined = next && next.startTick === run.endTick + 1;
            band(run.start, joined ? next.start : next ? run.end + intervalMs() : Math.max(run.end, nowWall()), run.state);
          }
          ctx.restore();
        }
      }
    };
  }

  function intervalMs() { return page.snapshot ? page.snapshot.intervalMs : 15000; }

  /**
   * One tick of a target as the page saw it, kept as runs of one state over consecutive ticks
   * (snapshot.ticks counts them: a gap means the page missed ticks, e.g. while reconnecting).
   */
  function recordLive(card, snapshot, state) {
    var wall = snapshot.lastTickWall, tick = snapshot.ticks;
    var runs = card.live, last = runs[runs.length - 1];
    if (last && wall <= last.end) return;
    if (last && last.state === state && tick === last.endTick + 1) {
      last.end = wall;
      last.endTick = tick;
    } else {
      runs.push({ start: wall, end: wall, startTick: tick, endTick: tick, state: state });
    }
    while (runs.length && runs[0].end < wall - HOUR_S * 1000) runs.shift();
  }

  function chartWidth(box) { return Math.max(200, box.clientWidth || 300); }

  var chartsByBox = new Map();
  var pendingResize = new Set();
  var resizeObserver = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { pendingResize.add(entry.target); });
    // Resizing in the next frame, not inside the observer callback, avoids a ResizeObserver loop.
    requestAnimationFrame(function () {
      pendingResize.forEach(function (box) {
        var chart = chartsByBox.get(box);
        var width = chartWidth(box);
        if (chart && chart.width !== width) chart.setSize({ width: width, height: chart.height });
      });
      pendingResize.clear();
    });
  });

  function makeChart(box, opts, data) {
    opts.width = chartWidth(box);
    opts.legend = { show: false };
    opts.cursor = { show: true, drag: { x: false, y: false } };
    var chart = new uPlot(opts, data, box);
    chartsByBox.set(box, chart);
    resizeObserver.observe(box);
    return chart;
  }

  function timeAxis() {
    return {
      // Room for "HH:MM:SS" labels: uPlot's default spacing lets them overlap.
      stroke: "#4b5563", size: 32, space: 80, grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" },
      values: function (u, splits) {
        var seconds = splits.length > 1 && splits[1] - splits[0] < 60;
        return splits.map(function (s) {
          var d = new Date(s * 1000);
          return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (seconds ? ":" + pad(d.getSeconds()) : "");
        });
      }
    };
  }
  function valueAxis(format, size) {
    return {
      stroke: "#4b5563", size: size || 50, grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" },
      values: function (u, values) { return values.map(format); }
    };
  }

  function createCard(target) {
    var card = { name: target.name, gapS: 300, bucketS: 5, live: [] };
    var root = el("article", "card");
    root.dataset.target = target.name;
    var head = el("div", "card-head");
    head.appendChild(el("h2", "", target.name));
    card.url = el("span", "url", target.url);
    head.appendChild(card.url);
    root.appendChild(head);
    var stateRow = el("div", "state-row");
    card.badge = el("span", "state-badge");
    card.badge.setAttribute("role", "status");
    stateRow.appendChild(card.badge);
    card.since = el("span", "since");
    stateRow.appendChild(card.since);
    root.appendChild(stateRow);
    card.reason = el("p", "reason");
    root.appendChild(card.reason);
    var facts = el("dl", "facts");
    card.budget = fact(facts, "Budget left");
    card.frozen = fact(facts, "Frozen for");
    card.models = fact(facts, "Models loaded");
    card.canary = fact(facts, "Last canary");
    card.gpu = fact(facts, "GPU utilization");
    card.vram = fact(facts, "VRAM");
    card.lastIncident = fact(facts, "Last incident");
    card.lastIncident.parentNode.className = "wide";
    root.appendChild(facts);
    createTrafficPanel(card, root);
    card.root = root;
    document.getElementById("targets").appendChild(root);

    var empty = [[], []];
    var bandsBox = chartBlock(root, "State, last hour", Object.keys(STATE_COLOURS).filter(function (s) { return s !== "down" && s !== "exhausted"; }).map(function (s) { return [s === "frozen" ? "frozen / down / exhausted" : s, STATE_COLOURS[s]]; }));
    card.bandsTitle = bandsBox.previousSibling;
    card.bands = makeChart(bandsBox, {
      height: 70,
      scales: { x: { time: true }, y: { range: [0, 1] } },
      axes: [timeAxis(), { show: false }],
      series: [{}, { stroke: "transparent", points: { show: false } }],
      plugins: [bandsPlugin(card)]
    }, empty);
    card.latency = makeChart(chartBlock(root, "Canary time to first token", [["answered (ms)", "#2563eb"], ["no token (ms)", "#b91c1c"]]), {
      height: 140,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(100, (max || 0) * 1.15)]; } } },
      axes: [timeAxis(), valueAxis(function (v) { return v >= 1000 ? (v / 1000) + " s" : v + " ms"; }, 60)],
      series: [{}, { label: "ttft", stroke: "#2563eb", width: 2, spanGaps: true, points: { show: true, size: 5 } },
        { label: "failed", stroke: "#b91c1c", width: 0, paths: function () { return null; }, points: { show: true, size: 8, fill: "#b91c1c" } }]
    }, [[], [], []]);
    card.gpuChart = makeChart(chartBlock(root, "GPU utilization", null), {
      height: 120,
      scales: { x: { time: true }, y: { range: [0, 100] } },
      axes: [timeAxis(), valueAxis(function (v) { return v + " %"; }, 56)],
      series: [{}, { label: "GPU", stroke: "#7c3aed", fill: "rgba(124,58,237,0.12)", width: 2 }]
    }, empty);
    card.vramChart = makeChart(chartBlock(root, "VRAM (GiB)", [["used", "#0f766e"], ["total", "#9ca3af"]]), {
      height: 120,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, (max || 0) * 1.1)]; } } },
      axes: [timeAxis(), valueAxis(function (v) { return v + " GiB"; }, 60)],
      series: [{}, { label: "used", stroke: "#0f766e", fill: "rgba(15,118,110,0.12)", width: 2 },
        { label: "total", stroke: "#9ca3af", dash: [6, 4], width: 1 }]
    }, [[], [], []]);
    card.charts = [card.bands, card.latency, card.gpuChart, card.vramChart];
    page.cards[target.name] = card;
    loadHistory(target.name);
    return card;
  }

  // Clients' own requests through the stall guard (docs/proxy.md), per model; hidden without one.
  var TRAFFIC_COLUMNS = [
    ["Model", ""], ["In flight", "generating requests forwarded to Ollama and not finished"],
    ["Waiting", "of those, still waiting for their first token"], ["Tokens/s", "streamed since the previous tick"],
    ["Requests", "finished since the watchdog started"], ["Errors", "of those, answered with an error status"],
    ["TTFT", "time to first token of the latest request that got one"],
    ["No token for", "the longest an in-flight request has gone without a token"]];
  function createTrafficPanel(card, root) {
    var panel = el("section", "chart traffic");
    panel.hidden = true;
    panel.appendChild(el("h3", "", "Traffic per model (stall guard)"));
    var scroll = el("div", "table-scroll");
    var table = el("table", "traffic-table");
    var headRow = el("tr");
    TRAFFIC_COLUMNS.forEach(function (column) {
      var th = el("th", "", column[0]);
      if (column[1]) th.title = column[1];
      headRow.appendChild(th);
    });
    var thead = el("thead");
    thead.appendChild(headRow);
    table.appendChild(thead);
    card.trafficRows = el("tbody");
    table.appendChild(card.trafficRows);
    scroll.appendChild(table);
    panel.appendChild(scroll);
    root.appendChild(panel);
    card.traffic = panel;
    card.trafficSeen = null;
  }

  function updateTraffic(card, obs) {
    var traffic = obs && obs.traffic;
    card.traffic.hidden = !traffic;
    if (!traffic) return;
    // Tokens/s from two ticks' chunk counters (one NDJSON line or SSE event per token).
    var before = card.trafficSeen;
    var seen = { mono: obs.mono, chunks: {} };
    var rows = traffic.slice().sort(function (a, b) { return b.inFlight - a.inFlight || (a.model < b.model ? -1 : 1); });
    card.trafficRows.textContent = "";
    if (!rows.length) {
      var none = el("tr");
      var cell = el("td", "traffic-none", "no requests through the stall guard yet");
      cell.colSpan = TRAFFIC_COLUMNS.length;
      none.appendChild(cell);
      card.trafficRows.appendChild(none);
    }
    rows.forEach(function (m) {
      seen.chunks[m.model] = m.chunks;
      var rate = "—";
      if (before && obs.mono > before.mono && before.chunks[m.model] !== undefined) {
        rate = ((m.chunks - before.chunks[m.model]) / ((obs.mono - before.mono) / 1000)).toFixed(1);
      }
      var quiet = m.inFlight > 0 && m.quietSinceMono !== undefined ? obs.mono - m.quietSinceMono : undefined;
      var row = el("tr");
      row.dataset.model = m.model;
      [m.model, m.inFlight, m.waiting, rate, m.requests, m.failed,
        m.lastTtftMs !== undefined ? millis(m.lastTtftMs) : "—",
        quiet !== undefined ? duration(quiet) : "—"].forEach(function (value, i) {
        var td = el("td", i === 0 ? "" : "num", value);
        if (i === 5 && m.failed > 0) td.classList.add("bad");
        if (i === 7 && quiet !== undefined && quiet >= 10000) td.classList.add("bad");
        row.appendChild(td);
      });
      card.trafficRows.appendChild(row);
    });
    card.trafficSeen = seen;
  }

  function updateCard(card, target) {
    var now = nowWall();
    if (page.snapshot.lastTickWall) recordLive(card, page.snapshot, target.state);
    card.root.dataset.state = target.state;
    card.badge.dataset.state = target.state;
    card.badge.textContent = target.state;
    card.url.textContent = target.url;
    card.since.textContent = "since " + clock(target.sinceWall) + " (" + ago(now - target.sinceWall) + ")";
    card.reason.textContent = target.reason || "";
    card.budget.textContent = target.budget.remaining + " of " + target.budget.max + " actions";
    card.frozen.textContent = target.frozenForMs > 0 ? ago(target.frozenForMs) : "—";
    var obs = target.observation;
    var models = obs && obs.ps ? obs.ps.models : null;
    card.models.textContent = models ? (models.length ? models.map(function (m) { return m.name; }).join(", ") : "none") : "—";
    var c = target.lastCanary;
    card.canary.textContent = !c ? "—" : c.outcome === "ok"
      ? millis(c.ttftMs !== undefined ? c.ttftMs : c.durationMs) + " (" + c.model + ")"
      : c.outcome + " after " + duration(c.durationMs) + " (" + c.model + ")";
    var gpus = (obs && obs.gpus) || (page.snapshot && page.snapshot.gpus) || [];
    var utils = gpus.filter(function (g) { return g.utilization !== undefined; });
    card.gpu.textContent = utils.length ? utils.map(function (g) { return Math.round(g.utilization * 100) + " %"; }).join(", ") : "—";
    var mem = gpus.filter(function (g) { return g.memoryUsedBytes !== undefined && g.memoryTotalBytes !== undefined; });
    card.vram.textContent = mem.length ? mem.map(function (g) { return gib(g.memoryUsedBytes) + " / " + gib(g.memoryTotalBytes) + " GiB"; }).join(", ") : "—";
    updateTraffic(card, obs);
    card.lastIncident.textContent = "";
    if (target.lastIncident) {
      var link = el("button", "link-button", target.lastIncident.outcome + " · " + dateTime(target.lastIncident.openedWall));
      link.type = "button";
      var id = target.lastIncident.id;
      link.addEventListener("click", function () { openReport(id); });
      card.lastIncident.appendChild(link);
    } else {
      card.lastIncident.textContent = "none";
    }
  }

  function renderTargets() {
    var snapshot = page.snapshot;
    var meta = document.getElementById("meta");
    meta.textContent = "v" + snapshot.version + " · tick every " + duration(snapshot.intervalMs) +
      (snapshot.lastTickWall ? " · last tick " + clock(snapshot.lastTickWall) : " · waiting for the first tick");
    snapshot.targets.forEach(function (target) {
      var card = page.cards[target.name] || createCard(target);
      card.gapS = Math.max(60, (snapshot.intervalMs / 1000) * 3);
      updateCard(card, target);
    });
  }

  function columns(points) {
    var xs = [], state = [], ttft = [], failed = [], util = [], used = [], total = [];
    points.forEach(function (p) {
      xs.push(p.wall / 1000);
      state.push(0.5);
      ttft.push(p.canaryTtftMs === undefined ? null : p.canaryTtftMs);
      failed.push(p.canaryFailedMs === undefined ? null : p.canaryFailedMs);
      util.push(p.gpuUtilization === undefined ? null : Math.round(p.gpuUtilization * 1000) / 10);
      used.push(p.vramUsedBytes === undefined ? null : p.vramUsedBytes / 1073741824);
      total.push(p.vramTotalBytes === undefined ? null : p.vramTotalBytes / 1073741824);
    });
    return { xs: xs, state: state, ttft: ttft, failed: failed, util: util, used: used, total: total };
  }

  function drawCharts(name) {
    var card = page.cards[name];
    if (!card) return;
    var col = columns(page.history[name] || []);
    var max = nowWall() / 1000;
    var points = page.history[name] || [];
    // A watchdog up for less than an hour: the charts span what there is, not a sliver at the right.
    var span = points.length ? Math.min(HOUR_S, Math.max(max - points[0].wall / 1000, 2 * card.bucketS)) : HOUR_S;
    var min = max - span;
    card.bandsTitle.textContent = span < HOUR_S ? "State since " + clock(points[0].wall) : "State, last hour";
    var sets = [[col.xs, col.state], [col.xs, col.ttft, col.failed], [col.xs, col.util], [col.xs, col.used, col.total]];
    card.charts.forEach(function (chart, i) {
      chart.setData(sets[i], false);
      chart.setScale("x", { min: min, max: max });
    });
  }

  function upsertPoint(name, point) {
    var series = page.history[name];
    if (!series) return;
    var last = series[series.length - 1];
    if (last && last.wall === point.wall) series[series.length - 1] = point;
    else if (!last || point.wall > last.wall) series.push(point);
    var oldest = point.wall - HOUR_S * 1000;
    while (series.length && series[0].wall <= oldest) series.shift();
  }

  function loadHistory(name) {
    return fetchJson("/api/history?target=" + encodeURIComponent(name)).then(function (body) {
      page.history[name] = body.points;
      if (page.cards[name] && body.bucketMs) page.cards[name].bucketS = body.bucketMs / 1000;
      drawCharts(name);
    }).catch(function (error) { console.warn("history", error.message); });
  }

  function renderIncidents() {
    var list = document.getElementById("incidents");
    list.textContent = "";
    document.getElementById("incidents-empty").hidden = page.incidents.length > 0;
    page.incidents.forEach(function (incident) {
      var item = el("li");
      var button = el("button", "incident");
      button.type = "button";
      button.dataset.id = incident.id;
      button.dataset.outcome = incident.outcome;
      var badge = el("span", "outcome", incident.outcome);
      badge.dataset.outcome = incident.outcome;
      button.appendChild(badge);
      button.appendChild(el("span", "title", incident.title));
      var when = dateTime(incident.openedWall) + (incident.closedWall ? " → " + clock(incident.closedWall) + " (" + ago(incident.closedWall - incident.openedWall) + ")" : " · still open");
      button.appendChild(el("span", "when", when));
      button.addEventListener("click", function () { openReport(incident.id); });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  function openReport(id) {
    page.openReport = id;
    return fetchJson("/api/incidents/" + encodeURIComponent(id)).then(function (body) {
      if (page.openReport !== id) return;
      var panel = document.getElementById("report-panel");
      var report = document.getElementById("report");
      report.dataset.id = id;
      // Rendered and HTML-escaped by the server (src/page/markdown-html.ts).
      report.innerHTML = body.html;
      panel.hidden = false;
      panel.scrollIntoView({ block: "start" });
    }).catch(function (error) { console.warn("report", error.message); });
  }

  function setConnection(live) {
    var node = document.getElementById("connection");
    node.dataset.live = live ? "true" : "false";
    node.textContent = live ? "live" : "reconnecting…";
  }

  function connect() {
    var source = new EventSource("/api/events");
    page.source = source;
    source.addEventListener("open", function () {
      setConnection(true);
      Object.keys(page.cards).forEach(loadHistory);
    });
    source.addEventListener("error", function () { setConnection(false); });
    source.addEventListener("snapshot", function (event) {
      var body = JSON.parse(event.data);
      page.snapshot = body.snapshot;
      renderTargets();
      Object.keys(body.points || {}).forEach(function (name) {
        upsertPoint(name, body.points[name]);
        drawCharts(name);
      });
    });
    source.addEventListener("incidents", function (event) {
      page.incidents = JSON.parse(event.data).incidents;
      renderIncidents();
      if (page.openReport) {
        var shown = page.incidents.filter(function (i) { return i.id === page.openReport; })[0];
        if (shown) openReport(shown.id);
      }
    });
  }

  // The fleet panel: peer watchdogs, polled by this watchdog in the background (/api/fleet answers
  // at once with the latest poll), worst first; shown only when peers are configured.
  function renderFleet(view) {
    var panel = document.getElementById("fleet-panel");
    if (!view || !view.peers) { panel.hidden = true; return; }
    panel.hidden = false;
    document.getElementById("fleet-meta").textContent = view.fetchedWall
      ? view.peers + " peer(s), asked " + ago(nowWall() - view.fetchedWall) + " ago"
      : view.peers + " peer(s), asking…";
    var body = document.querySelector("#fleet tbody");
    body.textContent = "";
    view.hosts.forEach(function (h) {
      var row = el("tr", "fleet-row");
      row.dataset.state = h.state;
      row.appendChild(el("td", "", h.target ? h.host + "/" + h.target : h.host));
      row.appendChild(el("td", "state", h.state === "unreachable" ? "unreachable" : h.state));
      row.appendChild(el("td", "", h.budget ? h.budget.remaining + "/" + h.budget.max : "—"));
      row.appendChild(el("td", "", h.state === "unreachable" ? "—" : h.lastIncident
        ? h.lastIncident.outcome + ", " + ago(nowWall() - h.lastIncident.openedWall) + " ago" : "none"));
      row.appendChild(el("td", "reason", h.state === "unreachable" ? h.url + ": " + h.reason : h.reason));
      body.appendChild(row);
    });
  }
  function loadFleet() {
    fetchJson("/api/fleet").then(renderFleet, function () { /* the next refresh tries again */ });
  }
  loadFleet();
  setInterval(loadFleet, 5000);

  document.getElementById("report-close").addEventListener("click", function () {
    page.openReport = null;
    document.getElementById("report-panel").hidden = true;
  });

  // A link in a notification opens one incident's report: /#incident=<id>
  function openFromHash() {
    var match = /^#incident=(.+)$/.exec(window.location.hash);
    if (!match) return;
    try { openReport(decodeURIComponent(match[1])); } catch (error) { console.warn("bad incident link", error.message); }
  }
  window.addEventListener("hashchange", openFromHash);

  connect();
  openFromHash();
})();
`;

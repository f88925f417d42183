/** The live page's HTML shell: everything else is filled in by page.js from /api/events. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>ollama-watchdog</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uplot.css">
<link rel="stylesheet" href="/assets/page.css">
</head>
<body>
<header class="top">
  <h1>ollama-watchdog</h1>
  <span id="meta" class="meta"></span>
  <span id="connection" class="connection" data-live="false">connecting…</span>
</header>
<main>
  <section id="targets" class="targets" aria-label="Targets"></section>
  <section class="panel" id="fleet-panel" hidden aria-labelledby="fleet-title">
    <h2 id="fleet-title">Fleet</h2>
    <p id="fleet-meta" class="muted"></p>
    <div class="table-scroll"><table id="fleet" class="fleet">
      <thead><tr><th>Host</th><th>State</th><th>Budget</th><th>Last incident</th><th>Reason</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section class="panel" id="incidents-panel" aria-labelledby="incidents-title">
    <h2 id="incidents-title">Incidents</h2>
    <p id="incidents-empty" class="muted">No incidents recorded.</p>
    <ul id="incidents" class="incidents"></ul>
  </section>
  <section class="panel" id="report-panel" hidden aria-labelledby="report-title">
    <div class="report-head">
      <h2 id="report-title">Recovery report</h2>
      <button type="button" id="report-close">Close</button>
    </div>
    <article id="report" class="report"></article>
  </section>
</main>
<script src="/assets/uplot.js"></script>
<script src="/assets/page.js"></script>
</body>
</html>
`;

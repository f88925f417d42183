/** The live page's stylesheet. State colours are defined once, as custom properties. */
export const PAGE_CSS = `
:root {
  --healthy: #15803d;
  --suspect: #f59e0b;
  --suspect-ink: #3b2500;
  --frozen: #b91c1c;
  --down: #b91c1c;
  --exhausted: #7f1d1d;
  --recovering: #1d4ed8;
  --starting: #6b7280;
  --ink: #111827;
  --muted: #4b5563;
  --line: #e5e7eb;
  --bg: #f3f4f6;
  --card: #ffffff;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink);
  background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
.top {
  display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5rem 1rem;
  padding: 0.75rem 1rem; background: #111827; color: #f9fafb;
}
.top h1 { font-size: 1.15rem; margin: 0; }
.meta { color: #d1d5db; font-size: 0.85rem; }
.connection { margin-left: auto; font-size: 0.8rem; padding: 0.1rem 0.5rem; border-radius: 999px; background: #374151; }
.connection[data-live="true"] { background: #065f46; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem; display: grid; gap: 1rem; }
.targets { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); }
.card, .panel {
  background: var(--card); border-radius: 10px; padding: 1rem;
  box-shadow: 0 1px 2px rgba(0,0,0,0.08); border: 1px solid var(--line); min-width: 0;
}
.card { border-left: 8px solid var(--starting); }
.card[data-state="healthy"] { border-left-color: var(--healthy); }
.card[data-state="suspect"] { border-left-color: var(--suspect); }
.card[data-state="frozen"], .card[data-state="down"] { border-left-color: var(--frozen); }
.card[data-state="exhausted"] { border-left-color: var(--exhausted); }
.card[data-state="recovering"] { border-left-color: var(--recovering); }
.card-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 0.75rem; }
.card-head h2 { margin: 0; font-size: 1.2rem; }
.url { color: var(--muted); font-size: 0.85rem; overflow-wrap: anywhere; }
.state-row { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; margin: 0.75rem 0 0.25rem; }
.state-badge {
  display: inline-flex; align-items: center; gap: 0.5rem; font-weight: 700; font-size: 1.35rem;
  padding: 0.3rem 0.9rem; border-radius: 8px; color: #fff; background: var(--starting);
}
.state-badge::before { content: ""; width: 0.7rem; height: 0.7rem; border-radius: 50%; background: currentColor; opacity: 0.85; }
.state-badge[data-state="healthy"] { background: var(--healthy); }
.state-badge[data-state="suspect"] { background: var(--suspect); color: var(--suspect-ink); }
.state-badge[data-state="frozen"], .state-badge[data-state="down"] { background: var(--frozen); }
.state-badge[data-state="exhausted"] { background: var(--exhausted); }
.state-badge[data-state="recovering"] { background: var(--recovering); }
.since { color: var(--muted); }
.reason { margin: 0.35rem 0 0.75rem; overflow-wrap: anywhere; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 0.5rem 1rem; margin: 0 0 0.75rem; }
.facts div { min-width: 0; }
.facts dt { font-size: 0.75rem; color: var(--muted); text-transform: uppercase; letter-spacing: 0.03em; }
.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
@media (min-width: 400px) { .facts .wide { grid-column: span 2; } }
.link-button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; color: #1d4ed8; text-decoration: underline; cursor: pointer; text-align: left; }
.chart { margin-top: 0.5rem; min-width: 0; }
.chart h3 { margin: 0 0 0.15rem; font-size: 0.8rem; color: var(--muted); font-weight: 600; }
.chart-box { width: 100%; overflow: hidden; }
.legend { display: flex; flex-wrap: wrap; gap: 0.25rem 0.75rem; font-size: 0.75rem; color: var(--muted); margin-top: 0.2rem; }
.legend span::before { content: ""; display: inline-block; width: 0.7rem; height: 0.7rem; margin-right: 0.25rem; vertical-align: -0.1rem; border-radius: 2px; background: var(--swatch); }
.panel h2 { margin: 0 0 0.5rem; font-size: 1.1rem; }
.muted { color: var(--muted); }
.incidents { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.4rem; }
.incident {
  width: 100%; text-align: left; display: grid; grid-template-columns: auto 1fr; gap: 0.15rem 0.75rem;
  align-items: center; padding: 0.5rem 0.75rem; border: 1px solid var(--line); border-radius: 8px;
  background: #fafafa; font: inherit; color: inherit; cursor: pointer;
}
.incident:hover, .incident:focus-visible { background: #eef2ff; }
.incident .when { grid-column: 2; color: var(--muted); font-size: 0.8rem; }
.outcome { font-size: 0.75rem; font-weight: 700; padding: 0.1rem 0.5rem; border-radius: 999px; color: #fff; background: var(--starting); grid-row: span 2; }
.outcome[data-outcome="healed"] { background: var(--healthy); }
.outcome[data-outcome="resolved-by-itself"] { background: #0f766e; }
.outcome[data-outcome="open"] { background: var(--suspect); color: var(--suspect-ink); }
.outcome[data-outcome="exhausted"] { background: var(--exhausted); }
.report-head { display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
.report-head button { font: inherit; padding: 0.3rem 0.8rem; border-radius: 6px; border: 1px solid var(--line); background: #fff; cursor: pointer; }
.report { overflow-wrap: anywhere; line-height: 1.45; }
.report h1 { font-size: 1.15rem; }
.report h2 { font-size: 1rem; margin-top: 1.1rem; }
.report code { background: #f3f4f6; padding: 0 0.2rem; border-radius: 4px; font-size: 0.9em; }
.table-scroll { overflow-x: auto; }
.report table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
.report th, .report td { border: 1px solid var(--line); padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
.report td:first-child { white-space: nowrap; }
.traffic { margin: 0 0 0.75rem; }
.traffic-table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
.traffic-table th, .traffic-table td { border-bottom: 1px solid var(--line); padding: 0.25rem 0.45rem; text-align: left; }
.traffic-table th { font-weight: 600; color: var(--muted); font-size: 0.75rem; }
.traffic-table td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.traffic-table td.bad { color: #b91c1c; font-weight: 600; }
.traffic-none { color: var(--muted); }
.fleet { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
.fleet th, .fleet td { border-bottom: 1px solid var(--line); padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
.fleet td:first-child, .fleet td.state { white-space: nowrap; }
.fleet-row[data-state="exhausted"] .state, .fleet-row[data-state="frozen"] .state,
.fleet-row[data-state="down"] .state, .fleet-row[data-state="unreachable"] .state { color: #b91c1c; font-weight: 600; }
@media (max-width: 600px) {
  main { padding: 0.5rem; gap: 0.5rem; }
  .card, .panel { padding: 0.75rem; }
  .state-badge { font-size: 1.15rem; }
  .connection { margin-left: 0; }
}
`;

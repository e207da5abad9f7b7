/**
 * The console's one page: its markup and style, served by the console itself
 * (no CDN, nothing fetched from elsewhere). page/console.mts fills it in.
 * Colours always come with words: a state is readable without them.
 */
export function pageHtml(options: { readOnly: boolean; windowSeconds: number }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>video-mesh console</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f8fa; }
  body { margin: 0 auto; max-width: 1200px; padding: 1rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; } h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .75rem 1rem; margin-bottom: 1rem; }
  .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; } @media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
  table { border-collapse: collapse; width: 100%; font-size: .9rem; } th, td { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid #eaeef2; }
  .health { font-weight: 600; } [data-health=ok] .health, [data-health=idle] .health { color: #1a7f37; }
  [data-health=degraded] .health { color: #9a6700; } [data-health=failing] .health, [data-health=down] .health { color: #cf222e; }
  [data-health=unknown] .health { color: #57606a; }
  svg { width: 100%; height: auto; } svg text { font-size: 13px; }
  .node rect { fill: #fff; stroke-width: 2; } .edge path { fill: none; stroke-width: 3; }
  .ok, .idle { stroke: #1a7f37; } .degraded { stroke: #bf8700; } .failing, .down { stroke: #cf222e; } .unknown { stroke: #8c959f; }
  .edge .failing, .edge .down { stroke-dasharray: 8 4; }
  .arrow { stroke: none; } .arrow.ok, .arrow.idle { fill: #1a7f37; } .arrow.degraded { fill: #bf8700; } .arrow.failing, .arrow.down { fill: #cf222e; } .arrow.unknown { fill: #8c959f; }
  summary { cursor: pointer; padding: .4rem 0; }
  button { font: inherit; padding: .3rem .7rem; border-radius: 6px; border: 1px solid #8c959f; background: #f6f8fa; cursor: pointer; }
  button:focus-visible, select:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
  button[aria-pressed=true] { background: #cf222e; color: #fff; border-color: #a40e26; }
  .switch { border-top: 1px solid #eaeef2; padding: .5rem 0; } .key { font-size: .85rem; color: #424a53; margin: .25rem 0 0; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; margin: .5rem 0; } dt { font-weight: 600; }
  .note { color: #57606a; font-size: .9rem; }
</style>
</head>
<body>
<header>
  <h1>video-mesh console</h1>
  <p class="note" id="status" role="status" aria-live="polite">Waiting for the first scrape…</p>
  ${options.readOnly ? '<p class="note" id="read-only">Read-only: the console has no faults token (FAULTS_TOKEN), so it shows no fault switches.</p>' : ''}
</header>
<section aria-labelledby="graph-title">
  <h2 id="graph-title">Live call graph <span class="note">(rates, error share and p95 over the last ${options.windowSeconds} s, from each service's /metrics)</span></h2>
  <svg id="graph" viewBox="0 0 960 470" role="img" aria-labelledby="graph-title graph-desc"><desc id="graph-desc">The services, NATS and PostgreSQL and the calls between them; the tables below say the same in words.</desc></svg>
  <div class="grid">
    <div><h2>Nodes</h2><table id="nodes"><thead><tr><th>Node</th><th>State</th><th>What it says</th></tr></thead><tbody></tbody></table></div>
    <div><h2>Call paths</h2><table id="edges"><thead><tr><th>Path</th><th>What</th><th>State</th><th>Numbers</th></tr></thead><tbody></tbody></table></div>
  </div>
</section>
<div class="grid">
<section aria-labelledby="player-title">
  <h2 id="player-title">Player</h2>
  <form id="player">
    <label for="asset">Asset</label> <select id="asset" name="asset" required></select>
    <button type="button" id="more-assets" hidden>More assets</button>
    <label for="user">User</label> <input id="user" name="user" value="alice" required pattern="[A-Za-z0-9_\\-]+" size="10">
    <button type="submit" id="play">Play</button>
  </form>
  <div id="answer" aria-live="polite"></div>
</section>
<section aria-labelledby="faults-title">
  <h2 id="faults-title">Break it yourself</h2>
  <div id="switches">${options.readOnly ? '<p class="note">Read-only: start the console with the services’ FAULTS_TOKEN to flip their fault toggles here.</p>' : ''}</div>
</section>
</div>
<section aria-labelledby="slo-title">
  <h2 id="slo-title">SLOs</h2>
  <div id="slo"></div>
</section>
<script type="module" src="/console.mjs"></script>
</body>
</html>
`;
}

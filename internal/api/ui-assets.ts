/**
 * The dashboard's page, stylesheet and icon. They are TypeScript strings so
 * that tsc alone puts the whole dashboard into dist/ (the image and the
 * package ship dist/ only); the browser modules are compiled from
 * internal/dashboard/. Relative URLs: the page works behind a proxy's prefix.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Titan</title>
<link rel="icon" href="icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="style.css">
<script type="module" src="js/internal/dashboard/app.js"></script>
</head>
<body>
<div id="app"><p class="boot">Loading the Titan dashboard…</p></div>
<noscript><p class="boot">The Titan dashboard needs JavaScript.</p></noscript>
</body>
</html>
`;

export const DASHBOARD_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f3a5f"/><path d="M7 9h18v4h-7v12h-4V13H7z" fill="#fff"/></svg>
`;

export const DASHBOARD_CSS = `:root {
  --bg: #f5f6f8; --panel: #fff; --ink: #1d2330; --muted: #667085; --line: #dde1e8;
  --accent: #1f5fbf; --accent-ink: #fff; --head: #1f3a5f;
  --pending: #b7791f; --scheduled: #6b46c1; --running: #1f5fbf; --succeeded: #2f855a; --failed: #c53030; --cancelled: #718096;
  --free: #e9edf3; --share-1: #4c8bf5; --share-2: #38a169; --share-3: #d69e2e; --share-4: #805ad5; --share-5: #dd6b20;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 14px; color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
.boot { padding: 2rem; color: var(--muted); }
header.top { display: flex; align-items: center; gap: 1.5rem; padding: 0 1.25rem; height: 48px; background: var(--head); color: #fff; }
header.top .brand { font-weight: 700; font-size: 16px; letter-spacing: .02em; color: #fff; }
header.top nav { display: flex; gap: .25rem; flex: 1; }
header.top nav a { color: #cfd8e6; padding: .4rem .7rem; border-radius: 4px; }
header.top nav a.active, header.top nav a:hover { background: rgba(255,255,255,.14); color: #fff; text-decoration: none; }
header.top .who { color: #cfd8e6; font-size: 13px; }
header.top .who b { color: #fff; font-weight: 600; }
header.top button { background: transparent; color: #fff; border-color: rgba(255,255,255,.4); }
main { padding: 1.25rem; max-width: 1400px; margin: 0 auto; }
h1 { font-size: 20px; margin: 0 0 1rem; display: flex; align-items: center; gap: .75rem; flex-wrap: wrap; }
h1 .sep { color: var(--muted); font-weight: 400; }
h1 .title-actions { margin-left: auto; font-size: 14px; font-weight: 400; }
h2 { font-size: 15px; margin: 1.5rem 0 .6rem; }
.sub { color: var(--muted); font-weight: 400; font-size: 13px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 1rem; }
.panel > p:first-child { margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .75rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; display: block; color: var(--ink); }
a.card:hover { border-color: var(--accent); text-decoration: none; }
.card .n { font-size: 26px; font-weight: 600; }
.card .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; white-space: nowrap; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable:hover { color: var(--ink); }
th.sorted-asc::after { content: " \\25B2"; font-size: 9px; }
th.sorted-desc::after { content: " \\25BC"; font-size: 9px; }
tr:last-child td { border-bottom: none; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { color: var(--muted); max-width: 420px; }
.empty { color: var(--muted); padding: 1rem; text-align: center; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.badge.Pending { background: var(--pending); } .badge.Scheduled { background: var(--scheduled); } .badge.Running { background: var(--running); }
.badge.Succeeded { background: var(--succeeded); } .badge.Failed { background: var(--failed); } .badge.Cancelled { background: var(--cancelled); }
.badge.role { background: #4a5568; }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; margin-bottom: .9rem; }
.chips { display: flex; gap: .3rem; flex-wrap: wrap; }
.chip { border: 1px solid var(--line); background: var(--panel); border-radius: 14px; padding: .25rem .7rem; cursor: pointer; font-size: 13px; }
.chip.on { background: var(--accent); color: var(--accent-ink); border-color: var(--accent); }
input[type=text], input[type=search], input[type=password], select { font: inherit; padding: .35rem .55rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button.primary { background: var(--accent); color: var(--accent-ink); border-color: var(--accent); }
button.danger { background: var(--failed); color: #fff; border-color: var(--failed); }
button:disabled { opacity: .45; cursor: not-allowed; }
.live { color: var(--succeeded); font-size: 12px; font-weight: 400; }
.live.off { color: var(--muted); }
.live::before { content: "\\25CF "; }
.error { background: #fff5f5; border: 1px solid #feb2b2; color: #9b2c2c; padding: .6rem .8rem; border-radius: 4px; margin-bottom: .9rem; }
.note { background: #fffbeb; border: 1px solid #f6e05e; padding: .6rem .8rem; border-radius: 4px; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1.25rem; margin: 0; }
dl.fields dt { color: var(--muted); }
dl.fields dd { margin: 0; word-break: break-word; }
.reason-text { white-space: pre-wrap; background: #fffbeb; border: 1px solid #f6e05e; padding: .5rem .7rem; border-radius: 4px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 1rem; }
.actions { display: flex; gap: .5rem; align-items: center; }
pre.json { background: #f7f8fa; border: 1px solid var(--line); border-radius: 4px; padding: .7rem; overflow: auto; max-height: 360px; margin: 0; }
.meter { position: relative; height: 16px; background: var(--free); border-radius: 3px; overflow: hidden; min-width: 120px; }
.meter > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--accent); }
.meter-row { display: grid; grid-template-columns: 70px 1fr 130px; gap: .6rem; align-items: center; margin: .3rem 0; }
.meter-row .v { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); font-size: 12.5px; }
.nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1rem; }
.node h3 { margin: 0 0 .2rem; font-size: 15px; display: flex; gap: .5rem; align-items: center; }
.node .meta { color: var(--muted); font-size: 12.5px; margin-bottom: .6rem; }
.gpus { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: .5rem; margin-top: .6rem; }
.gpu { border: 1px solid var(--line); border-radius: 4px; padding: .45rem .55rem; }
.gpu .name { font-size: 12px; color: var(--muted); margin-bottom: .3rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.gpu .bar { display: flex; height: 20px; background: var(--free); border-radius: 3px; overflow: hidden; }
.gpu .bar a { display: block; color: #fff; font-size: 11px; line-height: 20px; text-align: center; overflow: hidden; white-space: nowrap; border-right: 1px solid #fff; }
.s0 { background: var(--share-1); } .s1 { background: var(--share-2); } .s2 { background: var(--share-3); } .s3 { background: var(--share-4); } .s4 { background: var(--share-5); }
.gpu ul.holders { list-style: none; margin: .35rem 0 0; padding: 0; font-size: 12px; }
.gpu ul.holders li { display: flex; align-items: center; gap: .3rem; }
.gpu ul.holders li.free { color: var(--muted); }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 2px; }
.tree-indent { display: inline-block; width: 1.25rem; }
.muted { color: var(--muted); }
.login { max-width: 420px; margin: 12vh auto; }
.login h1 { justify-content: center; }
.login form { display: grid; gap: .7rem; }
.login p { color: var(--muted); margin: 0; }
.logbar { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; margin-bottom: .6rem; }
pre.log { background: #10151f; color: #d7dde8; padding: .8rem; border-radius: 6px; min-height: 300px; max-height: 70vh; overflow: auto; margin: 0; white-space: pre-wrap; word-break: break-all; }
pre.log .stderr { color: #ff9b9b; }
pre.log .notice { color: #8fa3bf; font-style: italic; }
pre.log.hide-stdout .stdout, pre.log.hide-stderr .stderr { display: none; }
.log-end { margin-top: .5rem; color: var(--muted); }
.pager { display: flex; gap: .5rem; justify-content: flex-end; margin-top: .6rem; align-items: center; }
`;

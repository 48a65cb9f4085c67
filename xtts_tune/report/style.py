"""The report page's style sheet and its table-sorting script, inlined so the report stays one offline file."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
.muted{color:#b8bfcc;margin:6px 0 0}.warn{background:#fff3cd;color:#664d03;padding:6px 10px;border-radius:4px;display:inline-block}
main{padding:20px 32px;max-width:1500px;margin:0 auto}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:16px 20px;margin:0 0 20px}
.card h2{margin:0 0 4px;font-size:19px}.caption{color:#5a6272;margin:0 0 8px;font-size:14px}
.grid{display:grid;grid-template-columns:3fr 2fr;gap:24px}.panel h3{margin:14px 0 4px;font-size:15px}
.panel ul{margin:0;padding-left:20px;line-height:1.45}.next li{font-family:ui-monospace,Menlo,monospace;font-size:13px}
.big{font-size:17px}.kv th{text-align:left;padding:2px 14px 2px 0;color:#5a6272;font-weight:600;vertical-align:top}
.kv td{padding:2px 0}.badge{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.sample{display:inline-block;margin:4px 18px 10px 0}.sample figcaption{font-size:13px;color:#5a6272;max-width:320px}
.plot-note{border:2px dashed #c9ced6;border-radius:6px;padding:40px;text-align:center;color:#5a6272}
.rates-row{display:flex;gap:40px;flex-wrap:wrap;align-items:flex-start;margin-top:10px}
table.rates{border-collapse:collapse;font-size:13px}table.rates td,table.rates th{padding:2px 10px;text-align:left}
.bar{display:inline-block;height:9px;background:#d62728;border-radius:2px;vertical-align:middle}
.scroll{overflow-x:auto}table.trials{border-collapse:collapse;font-size:13px;width:100%}
table.trials th{background:#eef0f4;cursor:pointer;position:sticky;top:0;padding:6px 8px;text-align:left;white-space:nowrap;user-select:none}
table.trials td{padding:4px 8px;border-top:1px solid #eceef2;white-space:nowrap}
table.trials tr:hover td{background:#f7f9fc}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
@media (max-width:1000px){.grid{grid-template-columns:1fr}}
"""


SORT_JS = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (raw === "") return null;
    var n = Number(raw);
    return isNaN(n) ? raw.toLowerCase() : n;
  }
  function compare(a, b, dir) {
    if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);
    if (typeof a !== typeof b) { a = String(a); b = String(b); }
    return (a < b ? -1 : a > b ? 1 : 0) * dir;
  }
  function sortBy(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      return compare(key(r.cells[col]), key(s.cells[col]), dir) || Number(r.dataset.trial) - Number(s.dataset.trial);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("aria-sort", i === col ? (dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        sortBy(table, col, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
      });
    });
    var initial = table.getAttribute("data-sort-initial");
    if (initial !== null) sortBy(table, Number(initial), 1);
  });
})();
"""

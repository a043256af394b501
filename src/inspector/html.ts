/** Escaping for the inspector's server-rendered pages: everything read from the database goes through it. */

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** `text` safe inside HTML text and double- or single-quoted attributes. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** A query-string or path component. */
export function enc(text: string): string {
  return encodeURIComponent(text);
}

/** A whole page around `body`. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · sagaflow</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}header small{color:#aab}
main{padding:16px 20px;max-width:1400px}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0 16px}
th,td{border-bottom:1px solid #e3e6eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#fff;border:1px solid #e3e6eb;padding:8px;overflow:auto;max-height:420px;margin:4px 0}
.status{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;background:#e3e6eb}
.status-completed{background:#d5f0dc}.status-rolled_back{background:#e8e0f5}.status-compensation_failed{background:#f8d3d3}
.status-blocked{background:#f8e7c4}.status-running,.status-waiting,.status-rolling_back{background:#d6e6f8}
.counts a{margin-right:10px}.facts th{width:170px}
form.filters{display:flex;gap:8px;align-items:end;flex-wrap:wrap}form.filters label{display:flex;flex-direction:column;font-size:12px}
.failure{background:#fff4f4;border-left:4px solid #d33;padding:6px 10px;margin:6px 0}
.note{color:#667}.diagram{background:#fff;border:1px solid #e3e6eb;overflow:auto;padding:8px}
.legend span{margin-right:12px;font-size:12px}
.actions form{display:inline-block;margin-right:8px}.actions button{padding:4px 10px}
</style></head><body><header><a href="/">sagaflow inspector</a><small>local, read from the database; nothing leaves this machine</small></header>
<main>${body}</main></body></html>`;
}

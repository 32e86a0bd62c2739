"""The status page as HTML, from a snapshot (pure: no I/O).

`render_page` is the whole document: styles and script inline, nothing fetched from elsewhere,
so it works offline. `render_body` is what the script fetches every few seconds (`/?part=body`)
to replace the page's content in place: one renderer, on the server, for both.

Cells carry a class naming their field (`lag`, `state`, `owner`...) and rows a `data-partition`
or `data-shard` attribute, so a person's browser and a test read the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from esm.status.command import abbreviate_sequence, millis_text

REFRESH_MILLISECONDS = 2000

KAFKA_COLUMNS = (
    ("partition", "partition"),
    ("owner", "owner"),
    ("state", "state"),
    ("committed", "committed"),
    ("end", "end"),
    ("lag", "lag"),
    ("in-flight", "in flight"),
    ("retries", "retries"),
    ("result", "last processing result"),
    ("error", "last error"),
)
STREAM_COLUMNS = (
    ("shard", "shard"),
    ("owner", "owner"),
    ("lease", "lease"),
    ("checkpoint", "checkpoint"),
    ("state", "state"),
    ("in-flight", "in flight"),
    ("lag", "behind latest"),
    ("result", "last processing result"),
    ("error", "last error"),
)

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d232a;background:#fbfbfc}
h1{font-size:1.3em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.4em 0 .2em}
.meta,.source{color:#555} .meta span{margin-right:1.2em}
table{border-collapse:collapse;margin:.4em 0 1em;width:100%}
th,td{border:1px solid #d5d9de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.error,.problems li,.mapping-error{color:#a3140e} .badge{padding:0 .4em;border-radius:3px}
.Enabled{background:#dcf3e0} .Disabled{background:#eee} .healthy-yes{color:#17692b}
.healthy-no,.stale,#offline{color:#a3140e;font-weight:600} .lost{color:#a3140e;font-weight:600}
.problems{border:1px solid #e7b3b0;background:#fdf0ef;padding:.4em 1em;margin:.6em 0}
#offline{display:none} #offline.shown{display:block}
"""

# Replaces #status with /?part=body every REFRESH_MILLISECONDS; says so when the daemon is gone.
_SCRIPT = """
(function(){
  var box=document.getElementById('status'), off=document.getElementById('offline');
  function refresh(){
    fetch('?part=body',{cache:'no-store'}).then(function(r){
      if(!r.ok) throw new Error('HTTP '+r.status); return r.text();
    }).then(function(html){
      box.innerHTML=html; off.classList.remove('shown');
    }).catch(function(e){
      if(!off.classList.contains('shown')){
        off.textContent='The daemon is not answering ('+e.message+') since '+new Date().toISOString()
          +'; what is shown is from before.';
        off.classList.add('shown');
      }
    }).finally(function(){ setTimeout(refresh, PERIOD); });
  }
  setTimeout(refresh, PERIOD);
})();
""".replace("PERIOD", str(REFRESH_MILLISECONDS))


def render_page(snapshot: Mapping[str, Any]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>esm status: {escape(_host(snapshot))}</title><style>{_STYLE}</style></head><body>"
        "<h1>esm status</h1><p id=offline role=alert></p>"
        f"<div id=status>{render_body(snapshot)}</div>"
        "<p class=meta>Also as JSON at <a href='status'>/status</a>; metrics at "
        f"<a href='metrics'>/metrics</a>. Refreshed every {REFRESH_MILLISECONDS // 1000}s.</p>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def render_body(snapshot: Mapping[str, Any]) -> str:
    parts = [_daemon_line(snapshot), _problems(snapshot)]
    mappings: Sequence[Mapping[str, Any]] = snapshot.get("mappings", [])
    parts += [_mapping(mapping) for mapping in mappings]
    if not mappings:
        parts.append("<p>No mappings in the config.</p>")
    return "".join(parts)


def _host(snapshot: Mapping[str, Any]) -> str:
    daemon = snapshot.get("daemon", {})
    return f"{daemon.get('host', '?')} (pid {daemon.get('pid', '?')})"


def _daemon_line(snapshot: Mapping[str, Any]) -> str:
    healthy = snapshot.get("daemon", {}).get("healthy")
    health = (
        "<span class=healthy-yes>healthy</span>" if healthy else "<span class=healthy-no>not healthy</span>"
    )
    generated = snapshot.get("generated_at")
    when = "never" if generated is None else _utc(float(generated))
    took = snapshot.get("gather_seconds")
    stale = " <span class=stale>(stale)</span>" if snapshot.get("stale") else ""
    return (
        f"<p class=meta><span>daemon {escape(_host(snapshot))}</span><span>{health}</span>"
        f"<span>updated <time class=updated>{when}</time>{stale}"
        f"{'' if took is None else f' in {took:.2f}s'}</span></p>"
    )


def _problems(snapshot: Mapping[str, Any]) -> str:
    problems: Sequence[str] = snapshot.get("unreachable", [])
    if not problems:
        return ""
    items = "".join(f"<li>{escape(problem)}</li>" for problem in problems)
    return f"<div class=problems><strong>Could not read:</strong><ul>{items}</ul></div>"


def _mapping(mapping: Mapping[str, Any]) -> str:
    state = str(mapping.get("state", "?"))
    head = (
        f"<section class=mapping data-uuid='{escape(str(mapping.get('uuid')))}'>"
        f"<h2>{escape(str(mapping.get('function')))} "
        f"<span class='badge mapping-state {escape(state)}'>{escape(state)}</span></h2>"
        f"<p class=source>source: {escape(str(mapping.get('source', '-')))}<br>"
        f"mapping {escape(str(mapping.get('uuid')))}</p>"
    )
    for problem in ("error", "note"):  # the note: nobody owns any partition or shard
        if problem in mapping:
            head += f"<p class=mapping-error>{escape(str(mapping[problem]))}</p>"
    if "shards" in mapping:
        rows = [(str(shard["shard_id"]), _shard_cells(shard)) for shard in mapping["shards"]]
        table = _table(STREAM_COLUMNS, rows, "shard")
    else:
        rows = [(str(p["partition"]), _partition_cells(p)) for p in mapping.get("partitions", [])]
        table = _table(KAFKA_COLUMNS, rows, "partition")
    return head + table + "</section>"


def _table(columns: Sequence[tuple[str, str]], rows: Sequence[tuple[str, dict[str, str]]], key: str) -> str:
    """`rows`: (the row's partition or shard id, its escaped cells by column name)."""
    if not rows:
        return f"<p>No {key}s known yet.</p>"
    header = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = "".join(
        f"<tr data-{key}='{escape(row_id)}'>"
        + "".join(f"<td class='{name}{_NUMERIC.get(name, '')}'>{cells[name]}</td>" for name, _ in columns)
        + "</tr>"
        for row_id, cells in rows
    )
    return f"<table class={key}s><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


_NUMERIC = {name: " num" for name in ("partition", "committed", "end", "lag", "retries")}


def _partition_cells(partition: Mapping[str, Any]) -> dict[str, str]:
    """The cells of a Kafka partition's row, escaped."""
    return {
        "partition": str(partition["partition"]),
        "owner": _text(partition.get("owner")) + (" STALE" if partition.get("owner_stale") else ""),
        "state": _text(partition.get("shard_state")),
        "committed": _text(partition.get("committed")),
        "end": _text(partition.get("end")),
        "lag": _text(partition.get("lag")),
        "in-flight": escape(_batches_in_flight(partition.get("in_flight"), str)),
        "retries": _text(partition.get("retries")),
        "result": _text(partition.get("last_processing_result")),
        "error": _text(partition.get("last_error")),
    }


def _shard_cells(shard: Mapping[str, Any]) -> dict[str, str]:
    """The cells of a stream shard's row, escaped; a shard that lost records says so first."""
    left = shard.get("lease_expires_in_seconds")
    lease = str(shard.get("lease")) + ("" if left is None else f" ({max(float(left), 0.0):.1f}s left)")
    error = _text(shard.get("last_error"))
    if shard.get("data_lost_at") is not None:
        lost = f"DATA LOST at {_utc(float(shard['data_lost_at']))}: records expired before they were read"
        error = f"<span class=lost>{escape(lost)}</span>" + ("" if error == "-" else f"<br>{error}")
    parents = shard.get("parents") or []
    shard_id = escape(str(shard["shard_id"])) + (
        f"<br><small>parents {escape(', '.join(parents))}</small>" if parents else ""
    )
    return {
        "shard": shard_id,
        "owner": _text(shard.get("owner")),
        "lease": escape(lease),
        "checkpoint": f"<span title='{_text(shard.get('checkpoint'))}'>"
        f"{escape(abbreviate_sequence(shard.get('checkpoint')))}</span>",
        "state": _text(shard.get("state")),
        "in-flight": escape(_batches_in_flight(shard.get("in_flight"), abbreviate_sequence)),
        "lag": escape(millis_text(shard.get("millis_behind_latest"))),
        "result": _text(shard.get("last_processing_result")),
        "error": error,
    }


def _batches_in_flight(in_flight: Any, position: Callable[[str], str]) -> str:
    """The batches the lanes are working on: one as its first-last positions and size, several
    as their records and the lowest first position; "-" for none (or no owner's report)."""
    batches = [batch for batch in in_flight or () if isinstance(batch, Mapping)]
    if not batches:
        return "-"
    lowest = min(batches, key=lambda batch: int(batch["first"]))
    records = sum(int(batch["records"]) for batch in batches)
    if len(batches) == 1:
        return f"{position(str(lowest['first']))}-{position(str(lowest['last']))} ({records} records)"
    return f"{records} records in {len(batches)} batches, from {position(str(lowest['first']))}"


def _text(value: object) -> str:
    return "-" if value is None else escape(str(value))


def _utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

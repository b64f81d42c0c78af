"""The report page: score tables, kind counts, confusion matrix, IoU histogram, filters and the cards.

Cards are spooled to a temporary file while the records stream by (the summary tables need the whole
stream, and memory must not grow with it), then the page is written atomically: head, tables, cards."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..metric.score import Scorer
from .align import KIND_LABELS, KINDS, align
from .cards import GOLD_COLOUR, PRED_COLOUR, ImageOptions, card, picture
from .stats import BINS, Summary

DEFAULT_SWEEP = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


@dataclass
class ReportOptions:
    iou: float = 0.5  # the threshold the cards and the main table use
    sweep: tuple[float, ...] = DEFAULT_SWEEP
    level: str = "fine"
    ignore_case: bool = False
    pred_field: str = "predictions"
    title: str = "vkel report"
    images: ImageOptions = field(default_factory=ImageOptions)


@dataclass
class ReportCounts:
    records: int = 0
    without_predictions: int = 0
    images_shown: int = 0
    images_missing: int = 0


CSS = f"""
body{{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}}
table{{border-collapse:collapse;margin:8px 0}} td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
th{{background:#f2f2f2}} td:first-child,th:first-child{{text-align:left}}
.matrix td{{min-width:18px;font-size:12px}} .matrix th{{font-size:11px}} .matrix .diag{{outline:2px solid #2a2}}
.card{{border:1px solid #bbb;border-radius:6px;padding:8px 12px;margin:12px 0;max-width:980px}}
.card[hidden]{{display:none}} .card h3{{margin:0 0 4px;font-size:14px}} .tweet mark{{background:#fff2a8}}
.frame{{position:relative;background:#808080;overflow:hidden;margin:6px 0}}
.frame img{{position:absolute;left:0;top:0;width:100%;height:100%;display:block}}
.frame .missing{{position:absolute;left:4px;bottom:4px;color:#fff;font-size:12px}}
.box{{position:absolute;box-sizing:border-box;border:3px solid}}
.box span{{position:absolute;left:0;top:-1px;font-size:10px;color:#000;padding:0 2px;white-space:nowrap}}
.box.gold{{border-color:{GOLD_COLOUR}}} .box.gold span{{background:{GOLD_COLOUR}}}
.box.pred{{border-color:{PRED_COLOUR}}} .box.pred span{{background:{PRED_COLOUR};top:auto;bottom:-1px}}
.noframe{{color:#666;font-style:italic}} table.items td,table.items th{{text-align:left}} tr.item.dim{{opacity:.3}}
.badge{{padding:0 4px;border-radius:3px;color:#fff;font-weight:normal}}
.badge.k-correct{{background:#2a7}} .badge.k-wrong_type{{background:#d80}} .badge.k-wrong_box{{background:#c50}}
.badge.k-missed{{background:#b22}} .badge.k-spurious{{background:#74b}}
#filters label{{margin-right:10px;white-space:nowrap}} .legend b{{padding:0 6px}}
"""

JS = """
function applyFilters(){
  const on = name => new Set([...document.querySelectorAll('input[name='+name+']:checked')].map(e => e.value));
  const kinds = on('kind'), types = on('type');
  const everything = document.querySelectorAll('#filters input:not(:checked)').length === 0;
  let shown = 0;
  for (const c of document.querySelectorAll('section.card')) {
    const keys = c.dataset.items ? c.dataset.items.split(' ') : [];
    const visible = keys.length ? keys.some(k => { const [kind, type] = k.split(':');
                                                  return kinds.has(kind) && types.has(type); }) : everything;
    c.hidden = !visible;
    if (visible) shown++;
    for (const r of c.querySelectorAll('tr.item'))
      r.classList.toggle('dim', !(kinds.has(r.dataset.kind) && types.has(r.dataset.type)));
  }
  document.getElementById('shown').textContent = shown;
}
document.addEventListener('change', e => { if (e.target.closest('#filters')) applyFilters(); });
// report.html#kinds=missed,wrong_box&types=person opens with only those boxes ticked (a link to share)
function filtersFromHash(){
  const wanted = new URLSearchParams(location.hash.slice(1));
  for (const [param, name] of [['kinds', 'kind'], ['types', 'type']]) {
    if (!wanted.has(param)) continue;
    const values = new Set(wanted.get(param).split(','));
    for (const box of document.querySelectorAll('input[name=' + name + ']')) box.checked = values.has(box.value);
  }
  applyFilters();
}
document.addEventListener('DOMContentLoaded', filtersFromHash);
window.addEventListener('hashchange', filtersFromHash);
"""


def _script_hash() -> str:
    """The CSP source that lets our one script run and nothing else: were a record's text ever to reach
    the page unescaped, its script would still be refused."""
    import base64
    import hashlib

    return "sha256-" + base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _score_tables(rows: list[dict[str, Any]], opts: ReportOptions) -> str:
    main = {(r["task"], r["type"]): r for r in rows if r["iou"] in (None, opts.iou)}
    types = list(dict.fromkeys(r["type"] for r in rows))
    tasks = ("FMNERG", "FMNER", "EEG")
    head = "".join(f'<th colspan="3">{t}</th>' for t in tasks)
    out = [f"<h2>Scores ({escape(opts.level)} types, IoU {opts.iou:g})</h2>",
           f'<table class="scores"><tr><th rowspan="2">type</th>{head}<th rowspan="2">gold</th></tr>'
           "<tr>" + "<th>P %</th><th>R %</th><th>F1 %</th>" * 3 + "</tr>"]
    for type_name in types:
        cells = "".join(f"<td>{_pct(main[(t, type_name)]['precision'])}</td><td>{_pct(main[(t, type_name)]['recall'])}"
                        f"</td><td>{_pct(main[(t, type_name)]['f1'])}</td>" for t in tasks)
        out.append(f"<tr><td>{escape(type_name)}</td>{cells}<td>{main[('FMNER', type_name)]['n_gold']}</td></tr>")
    out.append("</table><h2>IoU sweep (all types)</h2>")
    out.append('<table class="sweep"><tr><th>IoU</th>' + "".join(
        f"<th>{t} P %</th><th>{t} R %</th><th>{t} F1 %</th>" for t in ("FMNERG", "EEG")) + "</tr>")
    for threshold in sorted({r["iou"] for r in rows if r["iou"] is not None}):
        by_task = {r["task"]: r for r in rows if r["iou"] == threshold and r["type"] == "all"}
        out.append(f"<tr><td>{threshold:g}</td>" + "".join(
            f"<td>{_pct(by_task[t]['precision'])}</td><td>{_pct(by_task[t]['recall'])}</td>"
            f"<td>{_pct(by_task[t]['f1'])}</td>" for t in ("FMNERG", "EEG")) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _kind_table(summary: Summary) -> str:
    types = summary.coarse_types()
    out = ["<h2>Entities by error kind</h2><table class=\"kinds\"><tr><th>kind</th>"
           + "".join(f"<th>{escape(t)}</th>" for t in types) + "<th>all</th></tr>"]
    totals = summary.kind_totals()
    for kind in KINDS:
        out.append(f'<tr><td><b class="badge k-{kind}">{KIND_LABELS[kind]}</b></td>' + "".join(
            f"<td>{summary.kinds[(kind, t)]}</td>" for t in types) + f"<td>{totals[kind]}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _matrix(summary: Summary) -> str:
    rows, cols = summary.matrix_labels()
    peak = max(summary.confusion.values(), default=1)
    out = ["<h2>Fine-type confusion (rows: gold, columns: predicted; text-matched pairs)</h2>",
           '<div style="overflow-x:auto"><table class="matrix"><tr><th>gold \\ predicted</th>'
           + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr>"]
    for r in rows:
        cells = []
        for c in cols:
            n = summary.confusion.get((r, c), 0)
            shade = f"background:rgba(40,90,200,{0.08 + 0.6 * n / peak:.2f})" if n else ""
            cls = ' class="diag"' if r == c and n else ""
            cells.append(f'<td{cls} style="{shade}">{n or ""}</td>')
        out.append(f"<tr><th>{escape(r)}</th>{''.join(cells)}</tr>")
    out.append("</table></div>")
    return "".join(out)


def _histogram(summary: Summary) -> str:
    bins = summary.iou_bins
    peak = max(bins) or 1
    bar_w, height = 40, 120
    bars = []
    for i, n in enumerate(bins):
        h = height * n / peak
        x = 30 + i * bar_w
        bars.append(f'<rect class="bar" data-count="{n}" x="{x + 4}" y="{14 + height - h:.1f}" width="{bar_w - 8}" '
                    f'height="{h:.1f}" fill="#4a78c8"/><text x="{x + bar_w / 2}" y="{height + 28}" font-size="10" '
                    f'text-anchor="middle">{i / BINS:.1f}</text><text x="{x + bar_w / 2}" y="{10 + height - h:.1f}" '
                    f'font-size="10" text-anchor="middle">{n}</text>')
    width = 30 + BINS * bar_w + 10
    return ("<h2>IoU of matched pairs (predicted box vs best gold box; bins of 0.1)</h2>"
            f'<svg class="histogram" width="{width}" height="{height + 44}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(bars) + "</svg>"
            f"<p>{summary.one_box_null} text-matched pair(s) where only one side has a box.</p>")


def _filters(summary: Summary) -> str:
    kinds = "".join(f'<label><input type="checkbox" name="kind" value="{k}" checked> {KIND_LABELS[k]}</label>'
                    for k in KINDS)
    types = "".join(f'<label><input type="checkbox" name="type" value="{escape(t)}" checked> {escape(t)}</label>'
                    for t in summary.coarse_types())
    return (f'<h2>Tweets (<span id="shown">{summary.records}</span> shown of {summary.records})</h2>'
            f'<div id="filters"><div>error kind: {kinds}</div><div>coarse type: {types}</div></div>'
            f'<p class="legend"><b style="border:3px solid {GOLD_COLOUR}">gold box</b> '
            f'<b style="border:3px solid {PRED_COLOUR}">predicted box</b></p>')


def build_report(pairs, output: str, opts: ReportOptions, policy=None) -> ReportCounts:
    """Read (record, location) pairs, write the report to `output` (atomically)."""
    from ..core.errors import ErrorPolicy, VkelError
    from ..core.records import atomic_path
    from ..metric.score import _predictions

    policy = policy or ErrorPolicy("fail")
    ious = sorted(set(opts.sweep) | {opts.iou})
    scorer = Scorer(level=opts.level, ious=ious, by_type=True, ignore_case=opts.ignore_case)
    classifier = Scorer(level=opts.level, ious=[opts.iou], ignore_case=opts.ignore_case)
    summary, counts = Summary(), ReportCounts()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        for record, where in pairs:
            try:
                if not isinstance(record.get("entities"), list):
                    raise VkelError("record has no gold `entities`", str(where))
                predictions = _predictions(record, opts.pred_field, where)
            except VkelError as err:
                policy.handle(err)
                continue
            counts.records += 1
            counts.without_predictions += opts.pred_field not in record
            gold = record["entities"]
            scorer.add(gold, predictions)
            items = align(gold, predictions, classifier, opts.iou)
            summary.add(items)
            pic = picture(record, opts.images)
            counts.images_shown += pic.src is not None
            counts.images_missing += pic.src is None
            spool.write(card(record, items, pic, opts.images.max_width))
        spool.seek(0)
        with atomic_path(output, "w") as handle:
            handle.write(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                         f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                         f"img-src data: file: http: https:; style-src 'unsafe-inline'; "
                         f"script-src '{_script_hash()}'\">"
                         f"<title>{escape(opts.title)}</title><style>{CSS}</style><script>{JS}</script></head><body>"
                         f"<h1>{escape(opts.title)}</h1><p>{counts.records} records; "
                         f"{counts.without_predictions} without `{escape(opts.pred_field)}`.</p>")
            handle.write(_score_tables(scorer.results(), opts))
            handle.write(_kind_table(summary))
            handle.write(_matrix(summary))
            handle.write(_histogram(summary))
            handle.write(_filters(summary))
            shutil.copyfileobj(spool, handle)
            handle.write("</body></html>\n")
    return counts

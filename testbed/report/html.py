"""report.html: one self-contained page (inline CSS, plots embedded as base64 PNG, no external links).

    html = render_html(summary, plot_paths)
"""
import base64
import html
from pathlib import Path

from testbed.report.ci_table import CI_NOTE, ratio_table
from testbed.report.context_audit import audit_frames, audit_warnings, is_audit_key
from testbed.report.decision import decision_html
from testbed.report.drift import drift_section
from testbed.report.markdown import (AUDIT_NOTE, DIAGNOSIS_NOTE, METRICS_NOTE, ROUTING_NOTE, SWEEP_NOTE,
                                     diagnosis_lines, diagnosis_table)
from testbed.report.tables import (category_table, comparison_table, format_frame, routing_strong_arm_lines,
                                   routing_table, routing_tiers_line, sweep_table)

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } tbody th { text-align: left; }
.note { color: #555; max-width: 60em; } .warn { color: #a40; font-weight: bold; }
.plots img { max-width: 48%; margin: .5%; border: 1px solid #eee; }
"""


def embed_png(path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _header(summary: dict) -> str:
    parts = [f"<h1>{html.escape(str(summary.get('name', 'run')))}</h1>",
             f"<p>Baseline: <b>{html.escape(str(summary.get('baseline')))}</b></p>"]
    if summary.get("incomplete"):
        parts.append('<p class="warn">Incomplete run: it stopped before every arm finished; '
                     'figures cover what completed.</p>')
    notes = summary.get("notes") or []
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")
    return "\n".join(parts)


def context_audit_html(summary: dict) -> list[str]:
    """The context-audit section: warnings in the warning style, then the per-arm and per-category tables."""
    frames = audit_frames(summary)
    if frames["arm"].empty:
        return []
    warns = audit_warnings(summary)
    body = ["<h2>Context audit</h2>"]
    body += [f'<p class="warn">Warning: {html.escape(w)}</p>' for w in warns] or \
        ["<p>No warning: duplicate rates &le; 0.10, and no step lowered gold recall or answer-in-context.</p>"]
    body += [f'<p class="note">{html.escape(AUDIT_NOTE)}</p>', format_frame(frames["arm"]).to_html()]
    if not frames["category"].empty:
        body += ["<h3>Context audit by category</h3>", format_frame(frames["category"]).to_html()]
    return body


def _text(markdown: str) -> str:
    """A line of the Markdown report as HTML text: escaped, emphasis marks dropped."""
    return html.escape(markdown.replace("**", "").replace("*", "").replace("`", ""))


def routing_html(summary: dict) -> list[str]:
    """The "Routing" section, as report.md has it: tiers alone, one row per routed arm, the strong-arm lines."""
    table = routing_table(summary)
    if table.empty:
        return []
    strong = routing_strong_arm_lines(summary)
    return (["<h2>Routing</h2>", f"<p>{_text(routing_tiers_line(summary))}</p>", table.to_html()]
            + ([f"<p>{_text(' '.join(strong))}</p>"] if strong else []) + [f'<p class="note">{_text(ROUTING_NOTE)}</p>'])


def diagnosis_html(diag: dict | None) -> list[str]:
    """The "Failure diagnosis" section: per-arm causes, the rule of thumb, items left unprobed."""
    if not diag:
        return []
    note = html.escape(DIAGNOSIS_NOTE).replace("**", "")
    return (["<h2>Failure diagnosis</h2>", f'<p class="note">{note}</p>', diagnosis_table(diag).to_html()]
            + [f"<p>{html.escape(line)}</p>" for line in diagnosis_lines(diag)])


def render_html(summary: dict, plot_paths: list[Path]) -> str:
    body = [_header(summary), *decision_html(summary), "<h2>Comparison</h2>", comparison_table(summary).to_html(),
            f'<p class="note">{html.escape(METRICS_NOTE)}</p>', f'<p class="note">{html.escape(CI_NOTE)}</p>']
    ratios = ratio_table(summary)
    if not ratios.empty:
        body += ["<h3>Every ratio to the baseline, 95% CI</h3>", ratios.to_html()]
    body += [f"<h2>{html.escape(x[3:])}</h2>" if x.startswith("## ") else f"<p>{html.escape(x).replace('**', '')}</p>"
             for x in drift_section(summary) if x]
    sweep = sweep_table(summary)
    if not sweep.empty:
        body += ["<h2>Rate sweep</h2>", sweep.to_html(), f'<p class="note">{html.escape(SWEEP_NOTE)}</p>']
    cats = category_table(summary)
    cats = cats[[c for c in cats.columns if not is_audit_key(c)]] if not cats.empty else cats
    if not cats.empty:
        body += ["<h2>By category</h2>", format_frame(cats).to_html()]
    body += routing_html(summary)
    body += context_audit_html(summary)
    body += diagnosis_html(summary.get("diagnosis"))
    if plot_paths:
        body += ["<h2>Plots</h2>", '<div class="plots">' + "".join(embed_png(p) for p in plot_paths) + "</div>"]
    title = html.escape(str(summary.get("name", "run")))
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")

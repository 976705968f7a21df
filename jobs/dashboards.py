"""`trailhouse dashboards`: the dashboard datasets, a chart of each, and one offline HTML report.

Each dataset is a `queries/dashboard_*.sql` view, aggregated by DuckDB over the lake (no event is
loaded into Python), written as Parquet and CSV in a tidy shape a BI tool loads as it is. Charts
are Vega-Lite specs (Altair) rendered to PNG by vl-convert, which needs no browser and no network.
The report embeds the PNGs, so `index.html` opens offline and holds no external URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import duckdb
import vl_convert

from jobs.sql import days_clause, sql_string

Encoder = Callable[[alt.Chart], alt.Chart]
#: Categories a ranked chart shows (the dataset keeps them all).
TOP = 15
_SCALE = alt.Scale(scheme="tableau20")


def pie(theta: str, color: str) -> Encoder:
    return lambda c: c.mark_arc().encode(
        theta=alt.Theta(f"{theta}:Q"), order=alt.Order(f"{theta}:Q", sort="descending"),
        color=alt.Color(f"{color}:N", scale=_SCALE, sort=alt.EncodingSortField(theta, order="descending")),
        tooltip=[f"{color}:N", f"{theta}:Q"])


def stacked(x: str, y: str, color: str) -> Encoder:
    return lambda c: c.mark_bar().encode(x=alt.X(f"{x}:O", title=x), y=alt.Y(f"{y}:Q", stack="zero"),
                                         color=alt.Color(f"{color}:N", scale=_SCALE),
                                         tooltip=[f"{x}:O", f"{color}:N", f"{y}:Q"])


def ranked(category: str, value: str, color: str | None = None) -> Encoder:
    """Horizontal bars of the TOP categories by total value, optionally split by a color field."""
    def encode(c: alt.Chart) -> alt.Chart:
        enc = {"y": alt.Y(f"{category}:N", sort="-x", title=category, axis=alt.Axis(labelLimit=280)),
               "x": alt.X(f"sum({value}):Q", stack="zero", title=value), "tooltip": [f"{category}:N", f"{value}:Q"]}
        if color:
            enc["color"] = alt.Color(f"{color}:N", scale=_SCALE)
        return (c.transform_joinaggregate(_total=f"sum({value})", groupby=[category])
                .transform_window(_rank="dense_rank()", sort=[alt.SortField("_total", order="descending"),
                                                              alt.SortField(category)])
                .transform_filter(f"datum._rank <= {TOP}").mark_bar().encode(**enc))
    return encode


@dataclass(frozen=True)
class Dashboard:
    view: str  # the queries/dashboard_<name>.sql view
    title: str
    chart: Encoder


DASHBOARDS = (
    Dashboard("dashboard_iam_events_by_action", "IAM events by action", pie("events", "event_action")),
    Dashboard("dashboard_events_by_day_and_action", "Events per day by action",
              stacked("day", "events", "event_action")),
    Dashboard("dashboard_events_by_day_and_outcome", "Events per day by outcome",
              stacked("day", "events", "event_outcome")),
    Dashboard("dashboard_console_logins_by_day", "Console sign-ins per day", stacked("day", "logins", "event_outcome")),
    Dashboard("dashboard_failed_logins_by_user", "Failed console sign-ins by user", ranked("user_name", "failures")),
    Dashboard("dashboard_denied_calls", "Denied calls by principal and API",
              ranked("principal", "calls", "event_provider")),
    Dashboard("dashboard_ec2_changes_by_day", "EC2 changes per day by action", stacked("day", "events", "event_action")),
    Dashboard("dashboard_top_source_ips", "Top source IP addresses", ranked("source_ip", "events")),
    Dashboard("dashboard_top_user_agents", "Top user agents", ranked("user_agent_name", "events")),
    Dashboard("dashboard_activity_by_account_region", "Activity by account and region",
              ranked("cloud_account_id", "events", "cloud_region")),
)


def restrict(con: duckdb.DuckDBPyConnection, since: dt.date | None, until: dt.date | None) -> str:
    """Limit every dashboard to the report's days (the dashboard_* views all read dashboard_events);
    returns the WHERE clause, for the findings."""
    clause = days_clause(since, until)
    if not clause:
        return ""
    con.execute(f"CREATE OR REPLACE VIEW dashboard_events AS SELECT * FROM api_calls {clause}")
    return clause


def chart_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """The dataset as JSON-ready rows (dates and times as ISO text) for the chart; small by construction."""
    rel = con.table(table)
    cols = [f'"{c}"::VARCHAR AS "{c}"' if str(t).startswith(("DATE", "TIMESTAMP")) else f'"{c}"'
            for c, t in zip(rel.columns, rel.types)]
    result = con.sql(f"SELECT {', '.join(cols)} FROM {table}")
    return [dict(zip(result.columns, row)) for row in result.fetchall()]


def render_png(d: Dashboard, rows: list[dict]) -> bytes:
    if rows:
        chart = d.chart(alt.Chart(alt.Data(values=rows)))
    else:
        chart = alt.Chart(alt.Data(values=[{"text": "no data in this time range"}])).mark_text(size=14).encode(
            text="text:N")
    spec = chart.properties(title=d.title, width=520, height=300).to_dict()
    return vl_convert.vegalite_to_png(spec, scale=1.5)


def write_dataset(con: duckdb.DuckDBPyConnection, view: str, out: Path) -> str:
    """Aggregate the view over the lake once, into a temporary table that the files and the chart read."""
    table = f"{view}_result"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {view}")
    for fmt, opts in (("parquet", "FORMAT parquet"), ("csv", "FORMAT csv, HEADER true")):
        con.execute(f"COPY {table} TO {sql_string(out / f'{view}.{fmt}')} ({opts})")
    return table


def build(con: duckdb.DuckDBPyConnection, out: Path, since: dt.date | None, until: dt.date | None,
          lake: str) -> dict:
    """Write datasets/, charts/ and index.html under `out`; returns what was written."""
    where = restrict(con, since, until)
    (out / "datasets").mkdir(parents=True, exist_ok=True)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    sections, written = [], {}
    for d in DASHBOARDS:
        table = write_dataset(con, d.view, out / "datasets")
        rows = chart_rows(con, table)
        png = render_png(d, rows)
        (out / "charts" / f"{d.view}.png").write_bytes(png)
        written[d.view] = len(rows)
        sections.append((d, len(rows), png))
    span = con.sql("SELECT min(\"@timestamp\"), max(\"@timestamp\"), count(*) FROM dashboard_events").fetchall()[0]
    findings = con.sql(f"SELECT rule, wazuh_rule_id, level, count(*) AS findings FROM findings {where} "
                       "GROUP BY ALL ORDER BY level DESC, rule").fetchall()
    (out / "index.html").write_text(report_html(lake, since, until, span, findings, sections))
    return {"datasets": written, "calls": span[2], "findings": sum(f[3] for f in findings)}


def report_html(lake: str, since: dt.date | None, until: dt.date | None, span: tuple, findings: list[tuple],
                sections: list[tuple[Dashboard, int, bytes]]) -> str:
    esc = html.escape
    first, last, calls = span
    asked = f"{since or 'the first day'} to {until or 'the last day'}"
    rows = "".join(f"<tr><td>{esc(str(r))}</td><td>{esc(str(w))}</td><td>{lvl}</td><td>{n:,}</td></tr>"
                   for r, w, lvl, n in findings) or "<tr><td colspan=4>no findings</td></tr>"
    charts = "".join(
        f"<section><h2>{esc(d.title)}</h2><img alt='{esc(d.title)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'><p class=files>{rows_:,} rows · datasets/{d.view}.parquet · "
        f"datasets/{d.view}.csv</p></section>" for d, rows_, png in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trailhouse dashboards</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
section {{ display: inline-block; vertical-align: top; margin: 0 1.5em 2em 0; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3em .8em; text-align: left; }}
.files {{ color: #666; font-size: .85em; }}
</style></head><body>
<h1>CloudTrail dashboards</h1>
<p>Lake <code>{esc(lake)}</code> · days asked: {esc(asked)} · calls in range: {calls:,} (CloudTrail
 Insights notices aside) · first call {esc(str(first))} · last call {esc(str(last))} (UTC)</p>
<h2>Findings of the use-case views</h2>
<table><tr><th>rule</th><th>Wazuh rule</th><th>level</th><th>findings</th></tr>{rows}</table>
{charts}
</body></html>
"""

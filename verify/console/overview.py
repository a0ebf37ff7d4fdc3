"""Overview: verdicts over time, top reasons, top clusters, and how fresh outside knowledge is."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import redirect, render_template, request, url_for

from verify.api.context import db_session, services
from verify.console.blueprint import bp
from verify.console.charts import HEIGHT, WIDTH, stacked_bars
from verify.engine.lists import DISPOSABLE_LIST
from verify.store.lists import PACKAGE_SOURCE_PREFIX, get_list, list_summaries, source_counts
from verify.store.stats import window_stats

WINDOWS = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "hour"), "30d": (timedelta(days=30), "day")}


@bp.get("/")
def overview():
    window = request.args.get("window", "24h")
    span, bucket = WINDOWS.get(window, WINDOWS["24h"])
    now = datetime.now(timezone.utc)
    session = db_session()
    stats = window_stats(now - span, now, bucket, session=session)
    buckets = [{**item, "label": item["start"].strftime("%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")} for item in stats.buckets]
    totals = {name: sum(item[name] for item in buckets) for name in ("allow", "challenge", "deny")}
    summaries = list_summaries(session=session)
    disposable = [source for source, _ in source_counts(get_list(DISPOSABLE_LIST, session=session), session=session)
                  if source.startswith(PACKAGE_SOURCE_PREFIX)]
    return render_template(
        "console/overview.html",
        window=window, windows=list(WINDOWS), bucket=bucket, totals=totals,
        bars=stacked_bars(buckets, label="label"), chart_width=WIDTH, chart_height=HEIGHT,
        first=buckets[0]["label"] if buckets else "", last=buckets[-1]["label"] if buckets else "",
        top_reasons=stats.top_reasons, top_keys=stats.top_keys,
        geoip=[status.as_dict() for status in services().assessor.geoip.statuses(now=now)],
        disposable_sources=disposable,
        last_list_change=max((row.updated_at for row, _ in summaries), default=None),
    )


@bp.get("")
def root():
    return redirect(url_for("console.overview"))

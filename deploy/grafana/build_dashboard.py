"""Write deploy/grafana/crossings.json: the Crossings dashboard (python deploy/grafana/build_dashboard.py).

Kept as code so panels stay consistent (same datasource, units, grid); the JSON is committed
for import into Grafana (Dashboards > Import), with the Prometheus datasource chosen there.
"""

from __future__ import annotations

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
LATENCY = 'django_http_requests_latency_seconds_by_view_method_bucket{view!="prometheus-django-metrics"}'
RESPONSES = "django_http_responses_total_by_status_view_method_total"

# (title, unit, [(expr, legend)], width)
ROWS = [
    ("Traffic and latency", [
        ("Requests per second by view", "reqps",
         [("sum by (view) (rate(django_http_requests_total_by_view_transport_method_total[1m]))", "{{view}}")], 12),
        ("Latency p50 / p95 / p99 (all views)", "s",
         [(f"histogram_quantile({q}, sum by (le) (rate({LATENCY}[5m])))", f"p{int(q * 100)}")
          for q in (0.5, 0.95, 0.99)], 12),
        ("p99 latency by view", "s",
         [(f"histogram_quantile(0.99, sum by (le, view) (rate({LATENCY}[5m])))", "{{view}}")], 12),
        ("Responses by status class", "reqps",
         [(f'sum by (class) (label_replace(rate({RESPONSES}[1m]), "class", "${{1}}xx", "status", "(.).."))',
           "{{class}}")], 12),
        ("Error rate (5xx share)", "percentunit",
         [(f'sum(rate({RESPONSES}{{status=~"5.."}}[5m])) / clamp_min(sum(rate({RESPONSES}[5m])), 1e-9)', "5xx"),
          (f'sum(rate({RESPONSES}{{status=~"4.."}}[5m])) / clamp_min(sum(rate({RESPONSES}[5m])), 1e-9)', "4xx")], 12),
        ("Cache hit rate", "percentunit",
         [('sum(rate(crossings_response_cache_total{result="hit"}[5m])) / '
           'clamp_min(sum(rate(crossings_response_cache_total{result=~"hit|miss"}[5m])), 1e-9)',
           "cacheable reads served whole (response cache)"),
          ('sum(rate(crossings_cache_versioned_reads_total{result="hit"}[5m])) / '
           'clamp_min(sum(rate(crossings_cache_versioned_reads_total[5m])), 1e-9)',
           "read models (core.cache.keys)"),
          ("sum(rate(django_cache_get_hits_total[5m])) / clamp_min(sum(rate(django_cache_get_total[5m])), 1e-9)",
           "Django cache API")], 12),
    ]),
    ("Database", [
        ("Connection pool by alias", "short",
         [('sum by (alias, state) (crossings_db_pool_connections{state=~"size|in_use|waiting"})',
           "{{alias}} {{state}}")], 12),
        ("Replica lag", "s", [("max by (alias) (crossings_replica_lag_seconds)", "{{alias}}")], 12),
        ("Queries per second by alias", "ops",
         [("sum by (alias) (rate(django_db_execute_total[1m]))", "{{alias}}")], 12),
        ("Database errors", "ops",
         [("sum by (alias, type) (rate(django_db_errors_total[5m]))", "{{alias}} {{type}}")], 12),
    ]),
    ("Background work", [
        ("Celery queue length", "short", [("max by (queue) (celery_queue_length)", "{{queue}}")], 8),
        ("Task duration p95 by task", "s",
         [("histogram_quantile(0.95, sum by (le, task) (rate(celery_task_duration_seconds_bucket[10m])))",
           "{{task}}")], 8),
        ("Task failures by task", "short",
         [("sum by (task) (increase(celery_task_failures_total[10m]))", "{{task}}")], 8),
        ("Detector lag (oldest unprocessed ping)", "s",
         [("max(crossings_detector_lag_seconds)", "lag")], 12),
        ("Pings ingested per second", "short",
         [("sum by (result) (rate(crossings_pings_ingested_total[1m]))", "{{result}}")], 12),
    ]),
    ("WebSockets (docs/realtime.md)", [
        ("Open sockets", "short", [("sum(crossings_ws_open_sockets)", "open")], 6),
        ("Events delivered per second", "ops",
         [("sum by (how) (rate(crossings_ws_events_delivered_total[1m]))", "{{how}}")], 6),
        ("Delivery latency p50 / p99 (logged to sent)", "s",
         [(f"histogram_quantile({q}, sum by (le) (rate(crossings_ws_delivery_seconds_bucket[5m])))",
           f"p{int(q * 100)}") for q in (0.5, 0.99)], 6),
        ("Cap evictions and closes", "short",
         [("sum(increase(crossings_ws_cap_evictions_total[10m]))", "evictions (4409)"),
          ("sum by (code) (increase(crossings_ws_closes_total[10m]))", "closed {{code}}")], 6),
        ("GC pauses of the WebSocket processes (max over 5 min, by kind)", "s",
         [("max by (kind) (histogram_quantile(1, sum by (le, kind) "
           "(rate(crossings_ws_gc_pause_seconds_bucket[5m]))))", "{{kind}}")], 6),
    ]),
]


def build() -> dict:
    panels, y, panel_id = [], 0, 1
    for row_title, row_panels in ROWS:
        panels.append({"type": "row", "title": row_title, "id": panel_id, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        panel_id, y, x = panel_id + 1, y + 1, 0
        for title, unit, targets, width in row_panels:
            if x + width > 24:
                x, y = 0, y + 8
            panels.append({
                "type": "timeseries", "title": title, "id": panel_id, "datasource": DS,
                "gridPos": {"h": 8, "w": width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"expr": expr, "legendFormat": legend, "refId": chr(65 + i), "datasource": DS}
                            for i, (expr, legend) in enumerate(targets)],
            })
            panel_id, x = panel_id + 1, x + width
        y += 8
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "title": "Crossings", "uid": "crossings-overview", "tags": ["crossings"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []}, "annotations": {"list": []}, "panels": panels,
    }


if __name__ == "__main__":
    path = Path(__file__).with_name("crossings.json")
    path.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {path}")

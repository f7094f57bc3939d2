"""Fetches a broker's /metrics and parses it with Prometheus's own Python library (its
OpenMetrics parser, which refuses malformed exposition), printing one JSON object per sample:
{"family", "type", "name", "labels", "value"}.

Usage: parse_metrics.py <http://host:port>
"""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

url = sys.argv[1].rstrip("/") + "/metrics"
with urllib.request.urlopen(url, timeout=10) as resp:
    content_type = resp.headers.get("Content-Type", "")
    text = resp.read().decode("utf-8")
print(json.dumps({"content_type": content_type}))
for family in text_string_to_metric_families(text):
    for s in family.samples:
        print(json.dumps({
            "family": family.name,
            "type": family.type,
            "name": s.name,
            "labels": s.labels,
            "value": s.value,
        }))

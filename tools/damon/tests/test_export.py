# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""damon export --prometheus, scraped as Prometheus would and parsed by
prometheus_client's own parser: over HTTP (GET /metrics on a port the
kernel picks) and as a textfile replaced atomically."""

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DAMON, MON, WORKLOAD, check, finish, need_uffd_wp, skip,  # noqa: E402
                    tmpdir)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    if os.environ.get("CI") == "true":
        print("FAIL: prometheus_client is missing (apt-get install python3-prometheus-client)")
        sys.exit(1)
    skip("prometheus_client is missing (apt-get install python3-prometheus-client)")


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams, name, **labels):
    for s in fams[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def check_metrics(text, label):
    try:
        fams = families(text)
    except Exception as e:  # the parser's verdict is the point
        check(False, f"{label}: prometheus_client parses the exposition", e)
        return None
    want = {"damon_info", "damon_bytes", "damon_hot_bytes", "damon_cold_bytes",
            "damon_nr_regions", "damon_sample_interval_seconds",
            "damon_aggregation_interval_seconds", "damon_snapshots", "damon_monitor_cpu_seconds",
            "damos_tried_regions", "damos_tried_bytes", "damos_applied_regions",
            "damos_applied_bytes", "damos_quota_exceeds"}
    check(want <= set(fams), f"{label}: every family is there", sorted(want - set(fams)))
    if not want <= set(fams):
        return None
    buckets = {s.labels["rate"]: s.value for s in fams["damon_bytes"].samples}
    hot, cold = value(fams, "damon_hot_bytes"), value(fams, "damon_cold_bytes")
    check(sum(buckets.values()) == hot + cold and buckets["0"] == cold,
          f"{label}: the rate buckets add up to hot + cold bytes, bucket 0 is the cold",
          (buckets, hot, cold))
    check(fams["damon_snapshots"].type == "counter" and
          fams["damon_monitor_cpu_seconds"].type == "counter" and
          fams["damos_tried_bytes"].type == "counter", f"{label}: counters typed as counters")
    check(value(fams, "damon_nr_regions") > 0 and
          value(fams, "damon_aggregation_interval_seconds") == 0.1 and
          value(fams, "damon_sample_interval_seconds") == 0.005,
          f"{label}: regions and the intervals in force")
    info = fams["damon_info"].samples[0].labels
    check(info["backend"] == "uffd_wp" and info["pid"].isdigit(),
          f"{label}: damon_info names the backend and pid", info)
    return fams


def http():
    p = subprocess.Popen([DAMON, "export", "--prometheus", "--listen", "127.0.0.1:0", "-d", "8",
                          *MON, "--cold-age", "3", "--", WORKLOAD, "32", "4", "10"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    for line in p.stderr:
        m = re.search(r"serving (http://\S+/metrics)", line)
        if m:
            url = m[1]
            break
    check(url is not None, "damon export says where it serves")
    first = last = None
    try:
        for i in range(30):
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    ctype, body = r.headers["Content-Type"], r.read().decode()
            except urllib.error.HTTPError as e:
                if e.code == 503:  # no snapshot yet
                    continue
                raise
            if first is None:
                first = check_metrics(body, "HTTP")
                check(ctype.startswith("text/plain; version=0.0.4"),
                      "served as the text exposition format 0.0.4", ctype)
            if i >= 20:
                last = families(body)
                break
        if first and last:
            check(value(last, "damon_snapshots_total") > value(first, "damon_snapshots_total"),
                  "the snapshot counter grows between scrapes")
            check(value(last, "damos_tried_regions_total") > 0,
                  "the DAMOS stat scheme on cold memory has tried regions",
                  value(last, "damos_tried_regions_total"))
        try:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=5)
            code = 200
        except urllib.error.HTTPError as e:
            code = e.code
        check(code == 404, "another path: 404", code)
    finally:
        p.terminate()
        rc = p.wait(timeout=10)
    check(rc == 0, "SIGTERM ends damon export cleanly", rc)


def textfile():
    d = tmpdir()
    path = os.path.join(d, "damon.prom")
    p = subprocess.Popen([DAMON, "export", "--prometheus", "--textfile", path, "-d", "3", *MON,
                          "--", WORKLOAD, "16", "2", "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reads = bad = 0
    fams = None
    while p.poll() is None:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            time.sleep(0.01)
            continue
        reads += 1
        try:
            fams = families(text)
            if "damos_quota_exceeds" not in fams:
                bad += 1
        except Exception:
            bad += 1
        time.sleep(0.005)
    check(p.returncode == 0, "damon export --textfile ends after --duration, exit 0",
          p.returncode)
    check(reads > 20 and bad == 0,
          "every read of the textfile while it is rewritten is whole (rename)",
          (reads, bad))
    check_metrics(open(path).read(), "textfile")
    check(os.listdir(d) == ["damon.prom"], "no temporary file is left", os.listdir(d))


def main():
    need_uffd_wp()
    http()
    textfile()
    finish()


main()

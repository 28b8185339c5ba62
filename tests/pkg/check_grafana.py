"""tests/pkg/check_grafana.py: contrib/grafana/mika.json is current and asks
only for metrics mika exports.

- mika.json is exactly what contrib/grafana/make_dashboard.py writes;
- every mika_* metric in a panel's query is named in src/api/api_stats.c
  (the /metrics writer).
"""

import io
import json
import os
import re
import sys
from contextlib import redirect_stdout

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'contrib', 'grafana'))
import make_dashboard  # noqa: E402


def main():
    with open(os.path.join(ROOT, 'contrib', 'grafana', 'mika.json')) as f:
        have = f.read()
    buf = io.StringIO()
    with redirect_stdout(buf):
        json.dump(make_dashboard.dashboard(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write('\n')
    if buf.getvalue() != have:
        sys.exit('contrib/grafana/mika.json is stale: run contrib/grafana/make_dashboard.py')
    with open(os.path.join(ROOT, 'src', 'api', 'api_stats.c')) as f:
        exported = set(re.findall(r'mika_[a-z0-9_]+', f.read()))
    used = set()
    for p in json.loads(have)['panels']:
        for t in p['targets']:
            for m in re.findall(r'mika_[a-z0-9_]+', t['expr']):
                used.add(re.sub(r'_(bucket|sum|count)$', '', m))
    missing = sorted(m for m in used if m not in exported and m + '_bucket' not in exported)
    if missing:
        sys.exit('the dashboard queries metrics mika does not export: %s' % ', '.join(missing))
    print('grafana dashboard: %d panels, %d metrics, all exported'
          % (len(json.loads(have)['panels']), len(used)))


if __name__ == '__main__':
    main()

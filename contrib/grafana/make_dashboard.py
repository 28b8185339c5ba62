"""contrib/grafana/make_dashboard.py: writes mika.json, the Grafana dashboard.

The dashboard is generated so that each panel is one line here and the JSON
stays consistent (ids, grid positions, the datasource and instance
variables). Run it after changing a panel:

    python3 contrib/grafana/make_dashboard.py > contrib/grafana/mika.json

tests/pkg/check_grafana.py (make test-pkg) checks that mika.json is what
this script writes and that every metric it queries is one mika exports.
"""

import json
import sys

SEL = '{instance=~"$instance"}'
RATE = '[$__rate_interval]'


def q(expr, legend):
    return {'expr': expr, 'legendFormat': legend}


def quantile(p):
    return q('histogram_quantile(%s, sum by (le) (rate(mika_announce_duration_seconds_bucket%s%s)))'
             % (p, SEL, RATE), 'p%g' % (float(p) * 100))


# (title, unit, width, description, [targets], kind)
PANELS = [
    ('Announces and scrapes', 'reqps', 12, 'Requests answered per second.',
     [q('sum(rate(mika_announces_total%s%s))' % (SEL, RATE), 'announces'),
      q('sum(rate(mika_scrapes_total%s%s))' % (SEL, RATE), 'scrapes')], 'timeseries'),
    ('Announce latency', 's', 12,
     'Time to answer an announce, from the histogram mika_announce_duration_seconds.',
     [quantile('0.5'), quantile('0.9'), quantile('0.99'), quantile('0.999')], 'timeseries'),
    ('Peers', 'short', 12, 'Peers in the swarms now, by state and address family.',
     [q('sum by (state, family) (mika_peers%s)' % SEL, '{{state}} {{family}}')], 'timeseries'),
    ('Swarms, torrents, users', 'short', 12,
     'Torrents with at least one peer, registered torrents, users in memory.',
     [q('sum(mika_swarms%s)' % SEL, 'swarms'), q('sum(mika_torrents%s)' % SEL, 'torrents'),
      q('sum(mika_users%s)' % SEL, 'users')], 'timeseries'),
    ('Failures by reason', 'reqps', 12,
     'Announces and scrapes refused per second, by the failure reason sent.',
     [q('sum by (reason) (rate(mika_announce_failures_total%s%s))' % (SEL, RATE), '{{reason}}')],
     'timeseries'),
    ('Journal depth', 'bytes', 12,
     'Journal bytes answered but not yet applied to the store: it grows while the store is '
     'slow or down and drains after.',
     [q('max(mika_journal_backlog_bytes%s)' % SEL, '{{instance}}')], 'timeseries'),
    ('Store latency', 's', 12,
     'Time the store takes to apply one journal segment (one transaction), 99th '
     'percentile; with a growing journal depth, the sign of a slow or locked store.',
     [q('histogram_quantile(0.99, sum by (le) (rate(mika_store_batch_duration_seconds_bucket%s%s)))'
        % (SEL, RATE), 'p99')], 'timeseries'),
    ('Connections', 'short', 12,
     'Open connections on the tracker port; refusals per second (limits reached).',
     [q('sum(mika_connections%s)' % SEL, 'open'),
      q('sum(rate(mika_connections_refused_total%s%s))' % (SEL, RATE), 'refused/s')],
     'timeseries'),
    ('Passkey guessing', 'short', 12,
     'Addresses blocked for guessing passkeys, and requests refused while blocked, per second.',
     [q('sum(rate(mika_passkey_guess_blocks_total%s%s))' % (SEL, RATE), 'blocks/s'),
      q('sum(rate(mika_passkey_guess_refused_total%s%s))' % (SEL, RATE), 'refused/s')],
     'timeseries'),
    ('Admin API requests', 'reqps', 6, 'Admin API requests per second.',
     [q('sum(rate(mika_api_requests_total%s%s))' % (SEL, RATE), 'requests/s')], 'timeseries'),
    ('Uptime', 's', 6, 'Seconds since the daemon started.',
     [q('min(mika_uptime_seconds%s)' % SEL, '{{instance}}')], 'stat'),
]

def panel(i, x, y, title, unit, width, desc, targets, kind):
    p = {
        'id': i + 1,
        'type': kind,
        'title': title,
        'description': desc,
        'datasource': {'type': 'prometheus', 'uid': '${datasource}'},
        'gridPos': {'x': x, 'y': y, 'w': width, 'h': 8},
        'fieldConfig': {'defaults': {'unit': unit}, 'overrides': []},
        'targets': [dict(t, refId=chr(ord('A') + n),
                         datasource={'type': 'prometheus', 'uid': '${datasource}'})
                    for n, t in enumerate(targets)],
    }
    if kind == 'timeseries':
        p['options'] = {'legend': {'displayMode': 'list', 'placement': 'bottom'},
                        'tooltip': {'mode': 'multi'}}
    return p


def dashboard():
    panels, x, y = [], 0, 0
    for i, spec in enumerate(PANELS):
        width = spec[2]
        if x + width > 24:
            x, y = 0, y + 8
        panels.append(panel(i, x, y, *spec))
        x += width
    return {
        'title': 'mika tracker',
        'uid': 'mika-tracker',
        'description': "mika's Prometheus metrics (GET /metrics on the admin API).",
        'tags': ['mika', 'bittorrent'],
        'timezone': 'utc',
        'schemaVersion': 38,
        'version': 1,
        'editable': True,
        'refresh': '30s',
        'time': {'from': 'now-6h', 'to': 'now'},
        'templating': {'list': [
            {'name': 'datasource', 'label': 'Prometheus', 'type': 'datasource',
             'query': 'prometheus'},
            {'name': 'instance', 'label': 'Instance', 'type': 'query',
             'datasource': {'type': 'prometheus', 'uid': '${datasource}'},
             'query': {'query': 'label_values(mika_uptime_seconds, instance)',
                       'refId': 'instance'},
             'definition': 'label_values(mika_uptime_seconds, instance)',
             'includeAll': True, 'multi': True, 'refresh': 2,
             'current': {'text': 'All', 'value': '$__all'}},
        ]},
        'panels': panels,
    }


if __name__ == '__main__':
    json.dump(dashboard(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')

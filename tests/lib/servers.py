"""servers: the throwaway database servers the tests start, by backend name.

Owns: the table from a store backend's name ("postgres", "mysql", "redis")
to the class that runs a private server for it on loopback
(tests/lib/pgserver.py, mysqlserver.py, redisserver.py),
and the [store] config section that points mika at a running one.
Each class has start(), dsn(), halt() and resume() (an outage on the same
port) and stop() (which also removes its data).
"""
import mysqlserver
import pgserver
import redisserver

SERVERS = {
    'postgres': pgserver.Server,
    'mysql': mysqlserver.Server,
    'redis': redisserver.Server,
}


def store_config(backend, srv):
    """The [store] section that keeps every kind of state on srv."""
    return {'backend': backend, 'dsn': srv.dsn()}

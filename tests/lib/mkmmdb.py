#!/usr/bin/python3
"""tests/lib/mkmmdb.py: writes small MaxMind DB (.mmdb) files for tests.

No real GeoLite2 database ships with Debian, so the tests build their own
from the public format (MaxMind DB File Format Specification 2.0): a binary
search tree over IPv6 bits (IPv4 at ::a.b.c.d/96+n), 24-bit records, a data
section of typed fields, then the metadata map after "\\xab\\xcd\\xefMaxMind.com".

  mkmmdb.py city OUT.mmdb   networks with location/latitude, longitude
  mkmmdb.py asn OUT.mmdb    networks with autonomous_system_number

The networks are TEST_CITY and TEST_ASN below; tests/unit/test_geo.c and
tests/unit/test_select.c rely on them.
"""
import ipaddress
import struct
import sys

# (network, latitude, longitude, city name)
TEST_CITY = [
    ("10.1.0.0/16", 48.8566, 2.3522, "Paris"),
    ("10.2.0.0/16", 52.5200, 13.4050, "Berlin"),
    ("10.3.0.0/16", 40.7128, -74.0060, "New York"),
    ("10.4.0.0/16", -33.8688, 151.2093, "Sydney"),
    ("10.5.0.0/16", 48.1351, 11.5820, "Munich"),
    ("127.0.0.0/8", 48.8566, 2.3522, "Paris"),
    ("2001:db8:1::/48", 48.8566, 2.3522, "Paris"),
    ("2001:db8:4::/48", -33.8688, 151.2093, "Sydney"),
    ("::1/128", 48.8566, 2.3522, "Paris"),
]
# (network, asn, organization)
TEST_ASN = [
    ("10.1.0.0/16", 64501, "Test Net One"),
    ("10.2.0.0/16", 64502, "Test Net Two"),
    ("10.5.0.0/16", 64501, "Test Net One"),
    ("127.0.0.0/8", 64512, "Loopback Test"),
    ("2001:db8:1::/48", 64501, "Test Net One"),
]


def ctrl(typ, size):
    """Control byte(s) for a field of type typ and payload size."""
    if size < 29:
        first, ext = size, b""
    elif size < 285:
        first, ext = 29, bytes([size - 29])
    elif size < 65821:
        first, ext = 30, (size - 285).to_bytes(2, "big")
    else:
        first, ext = 31, (size - 65821).to_bytes(3, "big")
    if typ <= 7:
        return bytes([(typ << 5) | first]) + ext
    return bytes([first, typ - 7]) + ext


class U:
    """An unsigned int of a fixed MaxMind type: 5 uint16, 6 uint32, 9 uint64.
    Readers check the metadata's types exactly (node_count is a uint32,
    build_epoch a uint64 whatever their values)."""

    def __init__(self, typ, v):
        self.typ, self.v = typ, v


def enc(v):
    if isinstance(v, U):
        b = v.v.to_bytes((v.v.bit_length() + 7) // 8, "big") if v.v else b""
        return ctrl(v.typ, len(b)) + b
    if isinstance(v, bool):
        return ctrl(14, int(v))
    if isinstance(v, str):
        b = v.encode()
        return ctrl(2, len(b)) + b
    if isinstance(v, float):
        return ctrl(3, 8) + struct.pack(">d", v)
    if isinstance(v, int):
        if v < 0:
            raise ValueError("negative ints are not used here")
        b = v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""
        if v < 1 << 16:
            return ctrl(5, len(b)) + b
        if v < 1 << 32:
            return ctrl(6, len(b)) + b
        return ctrl(9, len(b)) + b
    if isinstance(v, dict):
        out = ctrl(7, len(v))
        for k, x in v.items():
            out += enc(k) + enc(x)
        return out
    if isinstance(v, list):
        return ctrl(11, len(v)) + b"".join(enc(x) for x in v)
    raise TypeError(type(v))


def bits_of(net):
    """The network as (prefix bits of the 128-bit IPv6 space)."""
    n = ipaddress.ip_network(net)
    if n.version == 4:
        value, plen = int(n.network_address), 96 + n.prefixlen
    else:
        value, plen = int(n.network_address), n.prefixlen
    return [(value >> (127 - i)) & 1 for i in range(plen)]


class Node:
    def __init__(self):
        self.kids = [None, None]  # Node, or ("data", offset), or None


def build(entries, db_type):
    data = b""
    root = Node()
    for net, record in entries:
        off = len(data)
        data += enc(record)
        node = root
        bits = bits_of(net)
        for depth, bit in enumerate(bits):
            if depth == len(bits) - 1:
                node.kids[bit] = ("data", off)
            else:
                if not isinstance(node.kids[bit], Node):
                    node.kids[bit] = Node()
                node = node.kids[bit]
    # Number the nodes breadth first; the root is node 0.
    order, i = [root], 0
    while i < len(order):
        for k in order[i].kids:
            if isinstance(k, Node):
                order.append(k)
        i += 1
    number = {id(n): i for i, n in enumerate(order)}
    count = len(order)

    def rec(k):
        if k is None:
            return count  # no data
        if isinstance(k, Node):
            return number[id(k)]
        return count + 16 + k[1]

    tree = b""
    for n in order:
        for k in n.kids:
            v = rec(k)
            assert v < 1 << 24
            tree += v.to_bytes(3, "big")
    meta = {
        "node_count": U(6, count),
        "record_size": U(5, 24),
        "ip_version": U(5, 6),
        "database_type": db_type,
        "languages": ["en"],
        "binary_format_major_version": U(5, 2),
        "binary_format_minor_version": U(5, 0),
        "build_epoch": U(9, 1765000000),
        "description": {"en": "mika test database (tests/lib/mkmmdb.py)"},
    }
    return tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + enc(meta)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("city", "asn"):
        sys.exit("usage: mkmmdb.py city|asn OUT.mmdb")
    if sys.argv[1] == "city":
        entries = [(net, {"city": {"names": {"en": name}},
                          "location": {"latitude": lat, "longitude": lon}})
                   for net, lat, lon, name in TEST_CITY]
        blob = build(entries, "Mika-Test-City")
    else:
        entries = [(net, {"autonomous_system_number": U(6, asn),
                          "autonomous_system_organization": org})
                   for net, asn, org in TEST_ASN]
        blob = build(entries, "Mika-Test-ASN")
    with open(sys.argv[2], "wb") as f:
        f.write(blob)


if __name__ == "__main__":
    main()

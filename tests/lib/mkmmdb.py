#!/usr/bin/python3
"""tests/lib/mkmmdb.py: writes small MaxMind DB (.mmdb) files for tests.

No real GeoLite2 database ships with Debian, so the tests build their own
from the public format (MaxMind DB File Format Specification 2.0): a binary
search tree over IPv6 bits (IPv4 at ::a.b.c.d/96+n), 24-bit records, a data
section of typed fields, then the metadata map after "\\xab\\xcd\\xefMaxMind.com".

  mkmmdb.py city OUT.mmdb   networks with location/latitude, longitude
  mkmmdb.py asn OUT.mmdb    networks with autonomous_system_number
  mkmmdb.py world CITY.mmdb ASN.mmdb   the benchmark's world (bench/run)

The networks are TEST_CITY and TEST_ASN below; tests/unit/test_geo.c and
tests/unit/test_select.c rely on them. The world is WORLD below, a /16 a
population centre inside 10.0.0.0/8; WORLD_NETS adds networks that are in
neither database, so that a peer drawn uniformly from them has no known
location or network about 5 % of the time.
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

# (city, latitude, longitude, AS number): 40 population centres, each
# 10.<i+1>.0.0/16. An AS is one centre or several (a national or continental
# network), so that same-network has networks of both kinds to fill from.
WORLD = [
    ("Tokyo", 35.6762, 139.6503, 65101), ("Osaka", 34.6937, 135.5023, 65101),
    ("Seoul", 37.5665, 126.9780, 65102), ("Shanghai", 31.2304, 121.4737, 65103),
    ("Beijing", 39.9042, 116.4074, 65103), ("Guangzhou", 23.1291, 113.2644, 65103),
    ("Manila", 14.5995, 120.9842, 65104), ("Jakarta", -6.2088, 106.8456, 65105),
    ("Singapore", 1.3521, 103.8198, 65106), ("Bangkok", 13.7563, 100.5018, 65107),
    ("Dhaka", 23.8103, 90.4125, 65108), ("Kolkata", 22.5726, 88.3639, 65109),
    ("Delhi", 28.7041, 77.1025, 65109), ("Mumbai", 19.0760, 72.8777, 65109),
    ("Karachi", 24.8607, 67.0011, 65110), ("Tehran", 35.6892, 51.3890, 65111),
    ("Istanbul", 41.0082, 28.9784, 65112), ("Moscow", 55.7558, 37.6173, 65113),
    ("Cairo", 30.0444, 31.2357, 65114), ("Nairobi", -1.2921, 36.8219, 65115),
    ("Johannesburg", -26.2041, 28.0473, 65116), ("Lagos", 6.5244, 3.3792, 65117),
    ("Stockholm", 59.3293, 18.0686, 65118), ("Berlin", 52.5200, 13.4050, 65118),
    ("Paris", 48.8566, 2.3522, 65118), ("London", 51.5074, -0.1278, 65118),
    ("Madrid", 40.4168, -3.7038, 65118), ("Rome", 41.9028, 12.4964, 65118),
    ("New York", 40.7128, -74.0060, 65119), ("Chicago", 41.8781, -87.6298, 65119),
    ("Los Angeles", 34.0522, -118.2437, 65119), ("Toronto", 43.6532, -79.3832, 65120),
    ("Mexico City", 19.4326, -99.1332, 65121), ("Bogota", 4.7110, -74.0721, 65122),
    ("Lima", -12.0464, -77.0428, 65123), ("Sao Paulo", -23.5505, -46.6333, 65124),
    ("Rio de Janeiro", -22.9068, -43.1729, 65124), ("Buenos Aires", -34.6037, -58.3816, 65125),
    ("Sydney", -33.8688, 151.2093, 65126), ("Melbourne", -37.8136, 144.9631, 65126),
]
# The networks the benchmark's peers are drawn from: the 40 centres and two
# /16s in no database (2 of 42: 4.8 % of the peers located nowhere).
WORLD_NETS = ["10.%d.0.0/16" % (i + 1) for i in range(len(WORLD))] + [
    "10.%d.0.0/16" % (len(WORLD) + 1), "10.%d.0.0/16" % (len(WORLD) + 2)]


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


def world(city_path, asn_path):
    """Writes the benchmark's two databases: WORLD's centres with their
    locations, and with their AS numbers."""
    nets = ["10.%d.0.0/16" % (i + 1) for i in range(len(WORLD))]
    city = [(net, {"city": {"names": {"en": name}},
                   "location": {"latitude": lat, "longitude": lon}})
            for net, (name, lat, lon, _) in zip(nets, WORLD)]
    asn = [(net, {"autonomous_system_number": U(6, a),
                  "autonomous_system_organization": "World Net %d" % a})
           for net, (_, _, _, a) in zip(nets, WORLD)]
    for path, entries, db_type in ((city_path, city, "Mika-Bench-City"),
                                   (asn_path, asn, "Mika-Bench-ASN")):
        with open(path, "wb") as f:
            f.write(build(entries, db_type))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "world":
        world(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 3 or sys.argv[1] not in ("city", "asn"):
        sys.exit("usage: mkmmdb.py city|asn OUT.mmdb | world CITY.mmdb ASN.mmdb")
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

/* tests/unit/test_geo.c: look-ups in the test MaxMind DBs that
 * tests/lib/mkmmdb.py writes (networks listed there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "swarm/cell.h"
#include "swarm/geo.h"

#define CITY MIKA_TEST_MMDB_DIR "/city.mmdb"
#define ASN MIKA_TEST_MMDB_DIR "/asn.mmdb"

static const uint8_t paris4[4] = {10, 1, 2, 3};
static const uint8_t sydney4[4] = {10, 4, 0, 1};
static const uint8_t nowhere4[4] = {11, 0, 0, 1};

static void test_geo_cell_of_known_networks(void **state)
{
    (void)state;
    struct geo *g;
    struct mk_errbuf eb = {0};
    assert_int_equal(geo_open(&g, CITY, NULL, &eb), 0);
    assert_true(geo_has_location(g));
    assert_false(geo_has_asn(g));
    assert_int_equal(geo_cell(g, paris4, 4), cell_of(48.8566, 2.3522));
    assert_int_equal(geo_cell(g, sydney4, 4), cell_of(-33.8688, 151.2093));
    uint8_t paris6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    assert_int_equal(geo_cell(g, paris6, 16), cell_of(48.8566, 2.3522));
    assert_int_equal(geo_locate(g, paris4, 4), cell_of(48.8566, 2.3522));
    geo_free(g);
}

static void test_geo_unknown_address_is_cell_zero(void **state)
{
    (void)state;
    struct geo *g;
    struct mk_errbuf eb = {0};
    assert_int_equal(geo_open(&g, CITY, ASN, &eb), 0);
    assert_int_equal(geo_cell(g, nowhere4, 4), CELL_UNKNOWN);
    uint8_t other6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 9};
    assert_int_equal(geo_cell(g, other6, 16), CELL_UNKNOWN);
    assert_int_equal(geo_cell(g, paris4, 3), CELL_UNKNOWN); /* not an address length */
    assert_int_equal(geo_asn(g, nowhere4, 4), 0);
    geo_free(g);
}

static void test_geo_asn_of_known_networks(void **state)
{
    (void)state;
    struct geo *g;
    struct mk_errbuf eb = {0};
    assert_int_equal(geo_open(&g, NULL, ASN, &eb), 0);
    assert_false(geo_has_location(g));
    assert_int_equal(geo_asn(g, paris4, 4), 64501);
    const uint8_t berlin4[4] = {10, 2, 9, 9};
    assert_int_equal(geo_asn(g, berlin4, 4), 64502);
    assert_int_equal(geo_cell(g, paris4, 4), CELL_UNKNOWN); /* no city database */
    assert_int_equal(geo_locate_net(g, paris4, 4), geo_net_tag(64501));
    const uint8_t munich4[4] = {10, 5, 0, 1}; /* the same AS as Paris */
    assert_int_equal(geo_locate_net(g, munich4, 4), geo_locate_net(g, paris4, 4));
    assert_int_not_equal(geo_locate_net(g, berlin4, 4), geo_locate_net(g, paris4, 4));
    assert_int_equal(geo_locate_net(g, nowhere4, 4), 0);
    assert_int_equal(geo_net_tag(0), 0);
    geo_free(g);
}

static void test_geo_open_names_the_bad_file(void **state)
{
    (void)state;
    struct geo *g = (struct geo *)&g;
    struct mk_errbuf eb = {0};
    assert_int_equal(geo_open(&g, "/nonexistent/city.mmdb", NULL, &eb), MK_EIO);
    assert_null(g);
    assert_non_null(strstr(eb.msg, "tracker.geoip_city_db: /nonexistent/city.mmdb"));
    /* A file that is not a MaxMind DB. */
    assert_int_equal(geo_open(&g, CITY, "/proc/self/cmdline", &eb), MK_EIO);
    assert_non_null(strstr(eb.msg, "tracker.geoip_asn_db"));
    geo_free(NULL);
}

static void test_geo_cells_grid(void **state)
{
    (void)state;
    assert_int_equal(cell_of(-90, -180), 1);
    assert_int_equal(cell_of(90, 180), cell_of(90, -180));
    assert_int_equal(cell_of(91, 0), CELL_UNKNOWN);
    assert_true(cell_of(89.9, 179.9) <= CELL_COUNT);
    /* Longitude wraps: 179 and -179 are one cell apart. */
    assert_int_equal(cell_distance(cell_of(0, 179.5), cell_of(0, -179.5)), 1);
    assert_int_equal(cell_distance(cell_of(48.8, 2.3), cell_of(52.5, 13.4)), 5);
    assert_int_equal(cell_distance(cell_of(10, 10), cell_of(10, 10)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geo_cell_of_known_networks),
        cmocka_unit_test(test_geo_unknown_address_is_cell_zero),
        cmocka_unit_test(test_geo_asn_of_known_networks),
        cmocka_unit_test(test_geo_open_names_the_bad_file),
        cmocka_unit_test(test_geo_cells_grid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cli/cli_out.h: the API's JSON answers as text for people.
 *
 * Owns: turning a JSON object into aligned "key: value" lines, and an array
 * of objects into a table with a header row; cleaning strings from the
 * server so that no control byte (a terminal escape) reaches the terminal.
 * Not here: --json output, which is the server's bytes unchanged (cli.c).
 * Values are shown exactly (integers in full, reals with the shortest text
 * that reads back the same); only table cells longer than CLI_OUT_MAX_CELL
 * characters are cut, with "..." (--json has them whole).
 */
#ifndef MIKA_CLI_CLI_OUT_H
#define MIKA_CLI_CLI_OUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_OUT_MAX_CELL 80
#define CLI_OUT_MAX_COLS 32

/* Text of one value into buf (always NUL-terminated, cut to cap - 1 bytes):
 * strings cleaned of control bytes, integers with %lld, reals shortest exact,
 * true/false, null as "-", arrays of scalars joined by ", ", other arrays and
 * objects as compact JSON. Returns the length written. */
size_t cli_out_scalar(const json_t *v, char *buf, size_t cap);

/* One "key: value" line per member, keys padded to one width; a nested
 * object's members show as "parent.child"; an array of objects is printed
 * after the other members as an indented table under "key:". */
void cli_out_object(FILE *f, const json_t *obj);

/* A table of an array of objects. cols lists the members to show in order
 * (NULL: every member in order of first appearance, at most CLI_OUT_MAX_COLS);
 * a missing member shows as "-". An empty array prints "(none)". Each line
 * starts with indent spaces. */
void cli_out_table(FILE *f, const json_t *rows, const char *const *cols, int indent);

/* Picks the view: an array is a table; a page (an object with one array
 * member, empty or of objects, and otherwise only numbers such as "total",
 * "offset") is that table followed by the numbers; any other object is
 * cli_out_object(). cols are the table's columns as for cli_out_table(). */
void cli_out_auto(FILE *f, const json_t *v, const char *const *cols);

#endif /* MIKA_CLI_CLI_OUT_H */

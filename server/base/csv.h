/*
 * csv.h - CSV text (RFC 4180) from JSON objects, for exports people open
 * in a spreadsheet: one row per object, the first object's keys as the
 * header. A cell holding a comma, a quote, CR or LF is quoted (quotes
 * doubled). A text cell that a spreadsheet would take for a formula (it
 * starts with =, +, -, @, TAB or CR) gets a leading apostrophe, so a
 * message body is never executed when the file is opened (OWASP "CSV
 * injection"); numbers, booleans and null (empty) are written as they are;
 * an array or object is its JSON text in one cell.
 *
 * Ownership: nothing is kept; output goes to the caller's sbuf.
 */
#ifndef PARLEY_CSV_H
#define PARLEY_CSV_H

#include "sbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Appends one text cell (not the separator). */
void csv_text(struct sbuf *o, const char *s, size_t n);
/* Appends the header line of object obj's keys (CRLF-terminated). */
void csv_header(struct sbuf *o, const cJSON *obj);
/* Appends one line of obj's values, in its key order (CRLF-terminated). */
void csv_row(struct sbuf *o, const cJSON *obj);

#endif

/*
 * jsonv.h - validation of HTTP request bodies against a field table: every
 * field typed and bounded, required fields present, unknown fields refused
 * (a misspelt field must not be silently ignored). Values are normalised in
 * place (emails and domains lower-cased) so that the caller can hand the
 * object to PostgreSQL as one JSON parameter.
 *
 * Pure functions over cJSON; the checks of single values (email, E.164
 * phone, URL, UUID, UTF-8 text) are exported for tests and other callers.
 */
#ifndef PARLEY_JSONV_H
#define PARLEY_JSONV_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum jv_type {
    JV_TEXT,    /* UTF-8 text without control characters, min..max characters */
    JV_EMAIL,   /* an address as people type it; lower-cased */
    JV_PHONE,   /* E.164: + and 8 to 15 digits, no leading zero */
    JV_URL,     /* http(s) URL without spaces, at most 2000 bytes */
    JV_UUID,    /* canonical textual UUID */
    JV_INT,     /* integer within min..max */
    JV_BOOL,    /* true or false */
    JV_ENUM,    /* one of choices */
    JV_DOMAINS, /* array of up to max DNS names; lower-cased */
    JV_UUIDS,   /* array of up to max UUIDs, no duplicates */
    JV_SECRET,  /* a password or token: any characters but NUL; at least min
                 * characters, at most max bytes */
};

struct jv_field {
    const char *name;           /* JSON key */
    enum jv_type type;          /* what the value must be */
    bool required;              /* must be present */
    bool nullable;              /* null is allowed (clears the value on update) */
    long long min, max;         /* text length, integer range, array length (max) */
    const char *const *choices; /* JV_ENUM: NULL-terminated list */
};

struct jv_err {
    const char *code;  /* stable: bad_json, not_object, unknown_field, missing_field, bad_field;
                        * internal: out of memory (the server's fault, not the body's) */
    char field[64];    /* the field at fault ("" for the body as a whole) */
    char message[160]; /* for people */
};

/* Parses body (len bytes, not necessarily NUL-terminated) and checks it
 * against fields (terminated by a NULL name). Returns the object (caller
 * frees with cJSON_Delete) or NULL with *err filled. An empty body is
 * accepted as {} when allow_empty. */
cJSON *jv_parse(const char *body, size_t len, const struct jv_field *fields, bool allow_empty,
                struct jv_err *err);

/* Valid UTF-8 without control characters (but \n \r \t when allow_newlines). */
bool jv_utf8_text(const char *s, size_t len, bool allow_newlines);
bool jv_email(const char *s);
bool jv_phone(const char *s);
bool jv_url(const char *s);
bool jv_uuid(const char *s);
bool jv_domain(const char *s);

#endif

/*
 * httpc.h - a blocking HTTP/1.1 client for the integration tests: one
 * request per connection (Connection: close), optional bearer token and
 * source address, the answer parsed as JSON when it is JSON.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct hres {
    int status;           /* HTTP status, or -1 when the request failed */
    char *body;           /* NUL-terminated body (malloc'd) */
    size_t len;           /* body length */
    cJSON *json;          /* body parsed, or NULL */
    char retry_after[16]; /* Retry-After header, "" if none */
    char allow[80];       /* Allow header, "" if none */
    char ctype[80];       /* Content-Type header */
    char *head;           /* the status line and headers as received (malloc'd), or NULL */
};

/* src: source IPv4 address ("127.0.0.x") or NULL. token: bearer token or
 * NULL. body: request body or NULL (raw, sent as application/json). */
struct hres http_req(int port, const char *src, const char *method, const char *path,
                     const char *token, const char *body);
/* The same with printf-formatted path. */
struct hres http_reqf(int port, const char *src, const char *method, const char *token,
                      const char *body, const char *pathfmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Sends raw bytes and returns the status line's code (framing tests). */
struct hres http_raw(int port, const char *raw, size_t len);
void hres_free(struct hres *r);
/* Header name's value into out ("" when absent); the number of times the
 * header occurs. */
int hres_header(const struct hres *r, const char *name, char *out, size_t cap);

/* The string field k of the answer's JSON object (or of its "error"
 * object when k starts with "error."), or "" when absent. */
const char *hres_str(const struct hres *r, const char *k);

#endif

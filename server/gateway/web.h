/*
 * web.h - the browser client (web/) served as static files on the gateway's
 * port, beside the API.
 *
 * web_start reads every servable file under --web-root into memory once,
 * before the loop runs, so that serving one never touches the disk (DESIGN,
 * "Never block the loop"). Each file gets a strong ETag (BLAKE2b of its
 * bytes), Last-Modified (its mtime) and, for compressible types, a gzip copy
 * made once when it is at least 10% smaller. The total in memory (gzip
 * copies included) is capped by --web-max-bytes: over it the gateway does
 * not start. A file changed on disk is served from the next start.
 *
 * Paths: GET and HEAD of every path that is not the API (/api, /api/...) or
 * an operational endpoint (/healthz, /readyz, /metrics) come here. "/" and
 * "dir/" serve their index.html; "/dir" redirects (308) to "/dir/" when
 * that has an index.html; any other missing path whose last segment has no
 * dot is a client-side route and serves /index.html; everything else
 * missing answers the API's JSON 404 (not_found). A path with a segment
 * starting with a dot ("..", ".git"), a backslash, an empty segment ("//"),
 * a '%' left after lws's decoding or a control character is answered 404
 * without any fallback. Lookups are exact matches in the table of loaded
 * files, so no request can name a file outside the root.
 *
 * Not loaded, so never served: dotfiles and dot-directories, node_modules/,
 * test folders (test/, tests/, __tests__/), symbolic links leading out of the
 * root, and files whose URL would be over 255 bytes.
 *
 * Ownership: struct web belongs to struct app (a->web) and is immutable
 * from web_start until web_free, which main calls after the loop has ended;
 * responses borrow its bytes.
 */
#ifndef PARLEY_WEB_H
#define PARLEY_WEB_H

#include <stdbool.h>

struct app;
struct http_req;

/* Loads a->cfg.web_root (or the installed default) into a->web. 0, or -1
 * logged: a root set explicitly that cannot be read, or one over the limit.
 * A missing default root only logs that no web client is served. */
int web_start(struct app *a);
void web_free(struct app *a);

/* True when a GET or HEAD of path is the web client's, not the API's. */
bool web_owns(const char *path);

/* Answers a GET or HEAD (see above). */
void web_serve(struct http_req *r);

#endif

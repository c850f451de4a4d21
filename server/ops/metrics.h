/*
 * metrics.h - /metrics: the counters of stats.h and gauges read from the
 * rooms, the bus, PostgreSQL and the connections, in the Prometheus text
 * format (version 0.0.4).
 *
 * It reads every layer, so it is at the top, in ops/; the counters are base
 * (stats.h), so the layers that count never call up to here. The API's
 * /metrics route reaches it through its hook (http_api.h).
 */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stddef.h>

struct app;

/* Renders the text into a new string (mem_alloc'd) (*len set); NULL on
 * allocation failure. The caller frees it (http_respond takes it). */
char *metrics_render(struct app *a, size_t *len);

#endif

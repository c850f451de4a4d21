/*
 * lifecycle.h - the gateway's life from start to exit: builds every part of
 * struct app in dependency order, wires the hooks through which lower layers
 * notify upper ones (the gateway's to the API and the rooms, the store's to
 * the rooms, the bus's to the rooms and the control channel), runs the
 * periodic timers and signals, and shuts down in order.
 *
 * It is the top of the layering (ARCHITECTURE.md): it may call everything,
 * and nothing calls it but main.c.
 */
#ifndef PARLEY_LIFECYCLE_H
#define PARLEY_LIFECYCLE_H

#include "config.h"

#include <uv.h>

struct app;

/* Builds everything and starts listening; 0 or -1 (logged). */
int lifecycle_start(struct app *a, const struct config *cfg, uv_loop_t *loop);
/* Begins the ordered shutdown (stop accepting, flush writes, close clients). */
void lifecycle_drain(struct app *a);

#endif

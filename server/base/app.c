#include "app.h"

#include <time.h>

/* The clocks every layer reads. They are here, at the bottom, so that a
 * connection or a batcher asking the time does not depend on the wiring
 * (ops/lifecycle.c) that builds the app. */

uint64_t app_now_ms(const struct app *a)
{
    return uv_now(a->loop);
}

int64_t app_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

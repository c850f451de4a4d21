#include "sub.h"

#include "mem.h"

#include <string.h>
#include <uv.h>

/* A member stays for hours: keep it to one small chunk (sub.h). */
_Static_assert(sizeof(struct sub) <= 72, "struct sub grew past an 80-byte chunk");

struct sub *sub_find(struct conn *c, const char *room_id)
{
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (!memcmp(c->subs[i]->room_id, room_id, PP_UUID_LEN)) return c->subs[i];
    return NULL;
}

struct sub *sub_new(struct conn *c, const char *room_id, int64_t join_id, bool has_since,
                    int64_t since)
{
    if (c->nsubs == c->subs_cap) {
        uint32_t ncap = c->subs_cap ? c->subs_cap * 2 : 3; /* 24 B: malloc's least chunk */
        struct sub **n = mem_realloc(c->subs, ncap * sizeof *n);
        if (!n) return NULL;
        c->subs = n;
        c->subs_cap = ncap;
    }
    struct sub *s = mem_calloc(1, sizeof *s);
    struct sub_join *j = mem_calloc(1, sizeof *j);
    if (!s || !j) {
        mem_free(s);
        mem_free(j);
        return NULL;
    }
    memcpy(j->room_id, room_id, PP_UUID_LEN);
    j->id = join_id;
    j->t0 = uv_hrtime();
    j->has_since = has_since;
    j->since = since;
    s->conn = c;
    s->join = j;
    s->room_id = j->room_id;
    s->state = SUB_CHECKING;
    c->subs[c->nsubs++] = s;
    return s;
}

void sub_join_done(struct sub *s)
{
    mem_free(s->join);
    s->join = NULL;
}

void sub_unlist(struct sub *s)
{
    struct conn *c = s->conn;
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (c->subs[i] == s) {
            c->subs[i] = c->subs[--c->nsubs];
            break;
        }
    if (s->join && s->join->check) s->join->check->obj = NULL;
    sub_join_done(s);
}

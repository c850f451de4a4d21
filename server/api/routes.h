/*
 * routes.h - the handlers of the API routes that check or compute something
 * before running their statement (the route table in http_api.c names them;
 * a route that only runs its statement has no handler). Each answers its
 * request exactly once, through apireq.h's helpers.
 *
 * Sign-in routes are in signin.h, the data-rights routes in rights.h.
 */
#ifndef PARLEY_ROUTES_H
#define PARLEY_ROUTES_H

struct http_req;

/* accounts and tokens */
void routes_logout(struct http_req *r);
void routes_me_patch(struct http_req *r);
void routes_avatar_token(struct http_req *r);

/* workspaces, people, invitations, the outbox, the visit log */
void routes_invite(struct http_req *r);
void routes_person_patch(struct http_req *r);
void routes_ws_create(struct http_req *r);
void routes_ws_patch(struct http_req *r);
void routes_ack(struct http_req *r);
void routes_outbox(struct http_req *r);
void routes_visits(struct http_req *r);

/* guidelines and moderation reports */
void routes_gl_put(struct http_req *r);
void routes_gl_dry_run(struct http_req *r);
void routes_eval(struct http_req *r);
void routes_mod_log(struct http_req *r);

#endif

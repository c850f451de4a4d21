/*
 * template.h - the deliverer's message templates: files an operator edits,
 * DIR/<lang>/<kind>.{subject,txt,html,sms}, with {{placeholder}}s. Every
 * file is read and checked once at start (an unknown placeholder, an
 * unclosed one, a missing file or text that is not UTF-8 refuses the
 * start, naming the file), then rendered from memory.
 *
 * Owns the loaded set (tpl_load / tpl_free); rendering returns strings the
 * caller frees with mem_free. Pure apart from reading the directory.
 */
#ifndef PARLEY_TEMPLATE_H
#define PARLEY_TEMPLATE_H

#include <stddef.h>

/* What an outbox item says, from its payload type (and purpose). */
enum tpl_kind {
    TPL_INVITATION,     /* invitation to a workspace */
    TPL_VERIFY_SIGNUP,  /* verification, purpose signup: confirm a new account */
    TPL_VERIFY_EMAIL,   /* verification, purpose email: confirm a new address */
    TPL_VERIFY_PHONE,   /* verification, purpose phone: confirm a number (SMS) */
    TPL_ADDRESS_IN_USE, /* someone tried to register the owner's address */
    TPL__KIND
};

/* One file of a kind: the email's subject, plain text and HTML
 * alternatives, and the text message. */
enum tpl_part { TPL_SUBJECT, TPL_TEXT, TPL_HTML, TPL_SMS, TPL__PART };

/* The placeholders, as written between {{ and }}. */
enum tpl_var {
    TV_WORKSPACE_NAME, /* {{workspace_name}} */
    TV_INVITER,        /* {{inviter}}: the inviting person's display name */
    TV_FIRST_NAME,     /* {{first_name}}: the addressee's, when known */
    TV_ROLE,           /* {{role}}: the role offered */
    TV_LINK,           /* {{link}}: the web client's redeem or verify page with the secret */
    TV_EXPIRES_AT,     /* {{expires_at}}: when the secret stops working */
    TV_WEB_URL,        /* {{web_url}}: the web client */
    TPL__VAR
};

/* Values by enum tpl_var; NULL renders as nothing. */
struct tpl_vars {
    const char *v[TPL__VAR]; /* UTF-8 values */
};

struct tpl_set;

/* Loads every language directory under dir (two-letter names); default_lang
 * must be among them. Returns 0, or -1 with a message naming the file in
 * err. */
int tpl_load(const char *dir, const char *default_lang, struct tpl_set **out, char *err,
             size_t errcap);
void tpl_free(struct tpl_set *s);

/* The kind of a payload type ("invitation", "verification" with purpose
 * "signup"/"email"/"phone", "address_in_use"); -1 for one this build does
 * not know. */
int tpl_kind_of(const char *type, const char *purpose);
const char *tpl_kind_name(enum tpl_kind k);

/* Whether kind k can go through the channel ("email" needs subject, text
 * and HTML; "sms" the text message). */
int tpl_has_channel(enum tpl_kind k, int sms);

/* Renders one part in lang, or in the default language when lang is NULL
 * or has no templates (*used says which). HTML parts escape values; the
 * subject and text message get values on one line. NULL when the part is
 * not one of the kind's or on allocation failure. */
char *tpl_render(const struct tpl_set *s, const char *lang, enum tpl_kind k, enum tpl_part part,
                 const struct tpl_vars *v, const char **used);

#endif

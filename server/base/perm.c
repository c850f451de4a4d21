#include "perm.h"

#include <string.h>

static const char *const role_names[ROLE__COUNT] = {
    [ROLE_OWNER] = "owner",     [ROLE_ADMIN] = "admin",   [ROLE_KEYUSER] = "keyuser",
    [ROLE_SUPPORT] = "support", [ROLE_MEMBER] = "member", [ROLE_AVATAR] = "avatar",
};

#define R(x) (1u << ROLE_##x)
#define STAFF (R(OWNER) | R(ADMIN))
#define ALL (R(OWNER) | R(ADMIN) | R(KEYUSER) | R(SUPPORT) | R(MEMBER) | R(AVATAR))

/* The matrix. Read it as: the roles that may. */
static const struct {
    const char *name; /* as in API.md */
    unsigned roles;   /* bit per role */
} matrix[PERM__COUNT] = {
    [P_WORKSPACE_READ] = {"workspace.read", ALL},
    [P_WORKSPACE_UPDATE] = {"workspace.update", STAFF},
    [P_WORKSPACE_DELETE] = {"workspace.delete", R(OWNER)},
    /* Letting a whole company's addresses in is the owner's decision. */
    [P_WORKSPACE_SELF_JOIN] = {"workspace.self_join", R(OWNER)},
    [P_PEOPLE_LIST] = {"people.list", ALL},
    [P_PEOPLE_CONTACTS] = {"people.contacts", STAFF | R(SUPPORT)},
    [P_PEOPLE_INVITE] = {"people.invite", STAFF},
    [P_PEOPLE_MANAGE] = {"people.manage", STAFF},
    [P_ROOMS_LIST] = {"rooms.list", ALL},
    [P_ROOMS_MANAGE] = {"rooms.manage", STAFF | R(KEYUSER)},
    [P_AVATARS_LIST] = {"avatars.list", STAFF | R(KEYUSER) | R(SUPPORT)},
    [P_AVATARS_MANAGE] = {"avatars.manage", STAFF},
    [P_VISITS_READ] = {"visits.read", STAFF},
    [P_ROOM_JOIN] = {"room.join", ALL},
    /* Support reads to help; it does not speak in a client's rooms. */
    [P_MSG_SEND] = {"message.send", ALL & ~R(SUPPORT)},
    [P_MSG_VOTE] = {"message.vote", ALL & ~R(SUPPORT)},
    /* What a person read is theirs; consultants evaluating a room see it. */
    [P_RECEIPTS_OTHERS] = {"receipts.others", STAFF | R(KEYUSER)},
    /* Everyone may know the rules; consultants and key users set them. */
    [P_GUIDELINES_READ] = {"guidelines.read", ALL},
    [P_GUIDELINES_MANAGE] = {"guidelines.manage", STAFF | R(KEYUSER)},
    /* Consultants and the client's key users run the rooms. */
    [P_MODERATE] = {"room.moderate", STAFF | R(KEYUSER)},
    [P_EVALUATE] = {"evaluation.read", STAFF | R(KEYUSER)},
};

enum role perm_role_parse(const char *s, size_t len)
{
    for (int r = 0; r < ROLE__COUNT; r++)
        if (strlen(role_names[r]) == len && !memcmp(role_names[r], s, len)) return (enum role)r;
    return ROLE_NONE;
}

const char *perm_role_name(enum role r)
{
    return r >= 0 && r < ROLE__COUNT ? role_names[r] : "none";
}

const char *perm_name(enum perm p)
{
    return p < PERM__COUNT ? matrix[p].name : "?";
}

bool perm_allows(enum role r, enum perm p)
{
    return r >= 0 && r < ROLE__COUNT && p < PERM__COUNT && (matrix[p].roles & (1u << r));
}

bool perm_manages(enum role actor, enum role target)
{
    switch (actor) {
    case ROLE_OWNER:
        return target == ROLE_ADMIN || target == ROLE_KEYUSER || target == ROLE_MEMBER;
    case ROLE_ADMIN:
        return target == ROLE_KEYUSER || target == ROLE_MEMBER;
    default:
        return false;
    }
}

#include "auth.h"

#include <errno.h>
#include <sodium.h>

int auth_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static void hash_raw(const unsigned char raw[AUTH_TOKEN_BYTES], unsigned char hash[AUTH_HASH_BYTES])
{
    crypto_generichash(hash, AUTH_HASH_BYTES, raw, AUTH_TOKEN_BYTES, NULL, 0);
}

void auth_token_new(char text[AUTH_TOKEN_CHARS + 1], unsigned char hash[AUTH_HASH_BYTES])
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(text, AUTH_TOKEN_CHARS + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    hash_raw(raw, hash);
    sodium_memzero(raw, sizeof raw);
}

int auth_token_hash(const char *text, size_t len, unsigned char hash[AUTH_HASH_BYTES])
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    size_t n = 0;
    if (len != AUTH_TOKEN_CHARS) return -EINVAL;
    if (sodium_base642bin(raw, sizeof raw, text, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n != sizeof raw)
        return -EINVAL;
    hash_raw(raw, hash);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

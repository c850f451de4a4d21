/*
 * libFuzzer target for the protocol decoder: any bytes in, never a crash, a
 * leak or undefined behaviour; what decodes must re-encode into valid JSON
 * that carries the same fields.
 *
 *   cmake -B build-fuzz -DCMAKE_C_COMPILER=clang -DPARLEY_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_decode
 *   ./build-fuzz/tests/fuzz/fuzz_decode -max_total_time=60 tests/fuzz/corpus_decode
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parley_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pp_limits lim = {.max_body = 256};
    struct pp_cmd cmd;
    struct pp_err err;
    if (pp_decode((const char *)data, size, &lim, &cmd, &err)) {
        /* A refusal always names a code and is NUL-terminated. */
        if (err.code <= PP_OK || err.code >= PP_E__COUNT) abort();
        if (strnlen(err.message, sizeof err.message) == sizeof err.message) abort();
        return 0;
    }
    if (cmd.id < 1 || cmd.id > PP_MAX_ID) abort();
    if (cmd.room.str && !pp_uuid_valid(cmd.room.str, cmd.room.len)) abort();
    if (cmd.body.str && (cmd.body.len == 0 || cmd.body.len > lim.max_body)) abort();
    /* Round trip the strings through the writer. */
    char out[4096];
    struct pp_w w;
    pp_w_init(&w, out, sizeof out);
    pp_w_obj_begin(&w);
    pp_w_key(&w, "op");
    pp_w_cstr(&w, pp_op_name(cmd.op));
    pp_w_key(&w, "id");
    pp_w_int(&w, cmd.id);
    if (cmd.body.str) {
        pp_w_key(&w, "body");
        pp_w_str(&w, cmd.body.str, cmd.body.len);
    }
    if (cmd.client_msg_id.str) {
        pp_w_key(&w, "cmid");
        pp_w_str(&w, cmd.client_msg_id.str, cmd.client_msg_id.len);
    }
    pp_w_obj_end(&w);
    int n = pp_w_finish(&w);
    if (n > 0) {
        cJSON *back = cJSON_ParseWithLength(out, (size_t)n);
        if (!back) abort();
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(back, "body");
        if (cmd.body.str && (!cJSON_IsString(b) || strcmp(b->valuestring, cmd.body.str))) abort();
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(back, "id");
        if (!cJSON_IsNumber(id) || (int64_t)id->valuedouble != cmd.id) abort();
        cJSON_Delete(back);
    }
    pp_cmd_free(&cmd);
    return 0;
}

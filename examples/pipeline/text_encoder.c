/* text_encoder.c — the prompt encoder: tokens -> embeddings -> MLP blocks -> pooled
 * context. See model.h. */
#include "examples/pipeline/model.h"

#include "examples/pipeline/cuda_check.h"
#include "examples/pipeline/device_memory.h"

#include <ctype.h>
#include <string.h>

#define TOKEN_PAD 0
#define TOKEN_BOS 1
#define TOKEN_EOS 2
#define TOKEN_FIRST_WORD 3

static const int block_weights[TEXT_BLOCKS] = {3, 4, 5, 5, 4, 3};

static void layout_with(struct text_encoder *m, double scale, const int *hidden) {
    memset(m, 0, sizeof *m);
    m->c.name = "text_encoder";
    int vocab = (int)(8192 * scale + 0.5);
    m->vocab = vocab < 256 ? 256 : vocab;
    m->token_table =
        component_add(&m->c, "token_table", (size_t)m->vocab * MODEL_WIDTH, 0.0f, 1.0f);
    m->position_table =
        component_add(&m->c, "position_table", (size_t)TEXT_TOKENS * MODEL_WIDTH, 0.0f, 0.2f);
    for (int i = 0; i < TEXT_BLOCKS; i++)
        mlp_block_layout(&m->blocks[i], &m->c, i, MODEL_WIDTH, hidden[i]);
    m->final_gamma = component_add(&m->c, "final_gamma", MODEL_WIDTH, 1.0f, 0.1f);
    m->final_beta = component_add(&m->c, "final_beta", MODEL_WIDTH, 0.0f, 0.05f);
}

void text_encoder_layout(struct text_encoder *m, double scale) {
    int hidden[TEXT_BLOCKS] = {0};
    layout_with(m, scale, hidden);
    double fixed = (double)component_bytes(&m->c);
    double total =
        (TEXT_MIB * MIB * scale - fixed) / (double)mlp_block_bytes_per_hidden(MODEL_WIDTH);
    split_hidden(hidden, block_weights, TEXT_BLOCKS, total);
    layout_with(m, scale, hidden);
}

static uint32_t word_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

int text_tokenize(const char *prompt, int vocab, int32_t tokens[TEXT_TOKENS]) {
    int count = 0, dropped = 0;
    tokens[count++] = TOKEN_BOS;
    const char *p = prompt;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (p == start)
            break;
        if (count < TEXT_TOKENS - 1)
            tokens[count++] = TOKEN_FIRST_WORD + (int32_t)(word_hash(start, (size_t)(p - start)) %
                                                           (uint32_t)(vocab - TOKEN_FIRST_WORD));
        else
            dropped++;
    }
    tokens[count++] = TOKEN_EOS;
    while (count < TEXT_TOKENS)
        tokens[count++] = TOKEN_PAD;
    return dropped;
}

CUdeviceptr text_encoder_forward(struct engine *e, const struct text_encoder *m,
                                 const char *prompt) {
    const char *name = m->c.name;
    e->component = name;
    int max_hidden = 0;
    for (int i = 0; i < TEXT_BLOCKS; i++)
        if (m->blocks[i].hidden > max_hidden)
            max_hidden = m->blocks[i].hidden;
    size_t row = MODEL_WIDTH * sizeof(float);
    int32_t tokens[TEXT_TOKENS];
    text_tokenize(prompt, m->vocab, tokens);

    CUdeviceptr d_tokens = engine_alloc(e, sizeof tokens, name, "act.tokens");
    CUdeviceptr hidden = engine_alloc(e, TEXT_TOKENS * row, name, "act.hidden");
    struct mlp_scratch s = {
        .normed = engine_alloc(e, TEXT_TOKENS * row, name, "act.normed"),
        .up = engine_alloc(e, (size_t)TEXT_TOKENS * max_hidden * sizeof(float), name, "act.up"),
        .down = engine_alloc(e, TEXT_TOKENS * row, name, "act.down"),
    };
    CUdeviceptr context = engine_alloc(e, row, name, "act.context");

    CU_CALL(cuMemcpyHtoDAsync, (d_tokens, tokens, sizeof tokens, e->stream),
            "uploading the prompt's tokens", name);
    launch_embed(e, d_tokens, m->token_table->ptr, m->position_table->ptr, hidden, TEXT_TOKENS,
                 MODEL_WIDTH, m->vocab);
    for (int i = 0; i < TEXT_BLOCKS; i++)
        mlp_block_forward(e, &m->blocks[i], hidden, TEXT_TOKENS, &s);
    launch_layernorm(e, hidden, s.normed, m->final_gamma->ptr, m->final_beta->ptr, 0, 0,
                     TEXT_TOKENS, MODEL_WIDTH);
    launch_mean_rows(e, s.normed, context, TEXT_TOKENS, MODEL_WIDTH);
    engine_sync(e); /* also keeps `tokens` alive until its upload is done */

    engine_free(e, d_tokens, name, "act.tokens");
    engine_free(e, hidden, name, "act.hidden");
    engine_free(e, s.normed, name, "act.normed");
    engine_free(e, s.up, name, "act.up");
    engine_free(e, s.down, name, "act.down");
    return context;
}

/*===- ckpt_seeds.c - Seeds of the checkpoint fuzzer --------------------===*
 *
 * Usage: sparsec-fuzz-ckpt-seeds DIR
 * Writes valid checkpoints of every variant of the fuzz model (fresh, after
 * one step, after several steps; SGD before its momentum exists), each
 * prefixed with the fuzzer's control byte (variant, CRC fix-up bit), plus a
 * checkpoint of one variant under another variant's byte.
 *===----------------------------------------------------------------------===*/
#include "fuzz_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int slurp(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = (uint8_t *)malloc((size_t)n + 1);
  *size = fread(*data, 1, (size_t)n, f);
  fclose(f);
  return *size == (size_t)n ? 0 : -1;
}

static int emit(const char *dir, const char *tag, int control, const uint8_t *data, size_t size) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/seed-%s-c%d", dir, tag, control);
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  const uint8_t c = (uint8_t)control;
  int ok = fwrite(&c, 1, 1, f) == 1 && fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  char tmp[1024];
  snprintf(tmp, sizeof(tmp), "%s/.ckpt-seed.tmp", dir);
  int written = 0;
  for (int v = 0; v < FM_VARIANTS; ++v) {
    const int steps[] = {0, 1, 5};
    for (int s = 0; s < 3; ++s) {
      sparsec_model *m = NULL;
      if (fm_create(v, 7 + (uint64_t)s, &m) != SPARSEC_OK || fm_train(m, steps[s], 99) != 0 ||
          sparsec_save(m, tmp) != SPARSEC_OK) {
        fprintf(stderr, "variant %d: %s\n", v, sparsec_last_error());
        return 1;
      }
      sparsec_destroy(m);
      uint8_t *data;
      size_t size;
      if (slurp(tmp, &data, &size) != 0)
        return 1;
      char tag[64];
      snprintf(tag, sizeof(tag), "v%d-s%d", v, steps[s]);
      for (int fix = 0; fix < 2; ++fix)
        if (emit(dir, tag, v | (fix << 2), data, size) != 0)
          return 1;
      /* The same file offered to the next variant (other state tensors). */
      snprintf(tag, sizeof(tag), "v%d-s%d-as-v%d", v, steps[s], (v + 1) % FM_VARIANTS);
      if (emit(dir, tag, (v + 1) % FM_VARIANTS, data, size) != 0)
        return 1;
      written += 3;
      free(data);
    }
  }
  remove(tmp);
  printf("wrote %d checkpoint seeds to %s\n", written, dir);
  return 0;
}

/*===- fuzz_checkpoint.c - libFuzzer target of sparsec_load -------------===*
 *
 * Arbitrary bytes -> a file -> sparsec_load into a trained instance of the
 * hand-written model of fuzz_model.c. The runtime sources are compiled with
 * ASan + UBSan + libFuzzer coverage (tests/fuzz/CMakeLists.txt).
 *
 * Input layout: byte 0 is a control byte, the rest is the file.
 *   bits 0-1: the model variant (optimizer and its state tensors);
 *   bit 2:    recompute the "crc32" metadata of the file before loading, so
 *             mutated data sections get past the checksum and reach the
 *             structural checks (CSR positions/columns, momentum flags,
 *             catch-up steps).
 *
 * Findings (abort, besides crashes, sanitizer reports, leaks, timeouts):
 *   * sparsec_load returns a status outside the documented set, or a
 *     failure without a message;
 *   * a failed load changed anything a checkpoint holds (parameters, CSR
 *     structure, optimizer state, row flags/steps, step, lr) -- hashed;
 *   * a successful load leaves an invalid model (fm_check_invariants), or
 *     a forward / train step on it then fails or crashes.
 * After a successful load the pristine state is restored from the
 * checkpoint saved at start-up (and checked by hash).
 *===----------------------------------------------------------------------===*/
#include "fuzz_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sparsec_model *models[FM_VARIANTS];
static uint64_t pristine_hash[FM_VARIANTS];
static char pristine_path[FM_VARIANTS][256];
static char input_path[256];
static int input_fd = -1;
/* Outcomes, printed at exit: how many inputs got how far. */
static unsigned long long n_inputs, n_loaded, n_status[16];

static void die(const char *what, int variant, int rc) {
  fprintf(stderr, "==sparsec-fuzz== FINDING: %s (variant %d, status %d %s: '%s')\n", what,
          variant, rc, sparsec_status_name(rc), sparsec_last_error());
  fflush(stderr);
  abort();
}

static void cleanup(void) {
  if (n_inputs) {
    fprintf(stderr,
            "==sparsec-fuzz== stats: %llu inputs, %llu loaded; refused: %llu IO, %llu FORMAT "
            "(%llu with the CRC fixed up), %llu NOMEM\n",
            n_inputs, n_loaded, n_status[SPARSEC_ERR_IO], n_status[SPARSEC_ERR_FORMAT],
            n_status[15], n_status[SPARSEC_ERR_NOMEM]);
  }
  if (input_path[0])
    unlink(input_path);
  for (int v = 0; v < FM_VARIANTS; ++v) {
    if (pristine_path[v][0])
      unlink(pristine_path[v]);
    sparsec_destroy(models[v]);
    models[v] = NULL;
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  /* The input file is rewritten per execution: keep it in memory (tmpfs
   * is ~15x faster than a disk file here). */
  const char *tmp = getenv("SPARSEC_FUZZ_TMPDIR");
  if (!tmp || !*tmp)
    tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = "/tmp";
  snprintf(input_path, sizeof(input_path), "%s/sparsec-fuzz-ckpt-XXXXXX", tmp);
  input_fd = mkstemp(input_path);
  if (input_fd < 0) {
    perror("mkstemp");
    abort();
  }
  for (int v = 0; v < FM_VARIANTS; ++v) {
    int rc = fm_create(v, 1234 + (uint64_t)v, &models[v]);
    if (rc != SPARSEC_OK)
      die("create failed", v, rc);
    rc = fm_train(models[v], 3 + v, (uint64_t)v);
    if (rc != SPARSEC_OK)
      die("train failed", v, rc);
    snprintf(pristine_path[v], sizeof(pristine_path[v]), "%s.pristine%d", input_path, v);
    rc = sparsec_save(models[v], pristine_path[v]);
    if (rc != SPARSEC_OK)
      die("save failed", v, rc);
    pristine_hash[v] = fm_state_hash(models[v]);
  }
  atexit(cleanup);
  return 0;
}

static void write_input(const uint8_t *data, size_t size) {
  if (ftruncate(input_fd, 0) != 0 || (size && pwrite(input_fd, data, size, 0) != (ssize_t)size)) {
    perror("write input");
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const int variant = data[0] & 3;
  const int fix_crc = (data[0] >> 2) & 1;
  ++data;
  --size;
  uint8_t *copy = NULL;
  if (fix_crc && size) {
    copy = (uint8_t *)malloc(size);
    memcpy(copy, data, size);
    fm_fix_crc(copy, size);
    data = copy;
  }
  write_input(data, size);
  free(copy);

  sparsec_model *m = models[variant];
  int rc = sparsec_load(m, input_path);
  ++n_inputs;
  if (rc >= 0 && rc < 15)
    ++n_status[rc];
  if (rc == SPARSEC_ERR_FORMAT && fix_crc)
    ++n_status[15];
  if (rc == SPARSEC_OK) {
    ++n_loaded;
    if (sparsec_last_error()[0] != '\0')
      die("successful load left an error message", variant, rc);
    const char *bad = fm_check_invariants(m);
    if (bad) {
      fprintf(stderr, "==sparsec-fuzz== invariant: %s\n", bad);
      die("a successful load left an invalid model", variant, rc);
    }
    /* Use the loaded state: forward, a train step (catch-up of loaded row
     * steps, optimizer on loaded state), save. */
    float x[2 * 4] = {0.5f, -1, 0.25f, 1, 0, 0.75f, -0.5f, 1};
    int64_t ids[2 * 2] = {0, 6, 3, 3};
    float y[2 * 2] = {1, -1, 0.5f, 0};
    float out[2 * 2];
    const void *fin[2] = {x, ids};
    const void *tin[3] = {x, ids, y};
    float loss;
    rc = sparsec_forward(m, 2, fin, out);
    if (rc != SPARSEC_OK)
      die("forward after a successful load failed", variant, rc);
    rc = sparsec_train_step(m, 2, tin, &loss);
    if (rc != SPARSEC_OK && rc != SPARSEC_ERR_NONFINITE)
      die("train_step after a successful load failed", variant, rc);
    rc = sparsec_catch_up(m);
    if (rc != SPARSEC_OK)
      die("catch_up after a successful load failed", variant, rc);
    rc = sparsec_load(m, pristine_path[variant]);
    if (rc != SPARSEC_OK)
      die("reloading the pristine checkpoint failed", variant, rc);
    if (fm_state_hash(m) != pristine_hash[variant])
      die("reloading the pristine checkpoint did not restore the state", variant, rc);
    return 0;
  }
  if (rc != SPARSEC_ERR_IO && rc != SPARSEC_ERR_FORMAT && rc != SPARSEC_ERR_NOMEM)
    die("load returned an unexpected status", variant, rc);
  if (sparsec_last_error()[0] == '\0')
    die("failed load without a message", variant, rc);
  if (fm_state_hash(m) != pristine_hash[variant])
    die("a failed load changed the model", variant, rc);
  return 0;
}

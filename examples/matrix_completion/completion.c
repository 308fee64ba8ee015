/* Matrix completion trained with the fn kernels of completion.sdl.
 *
 * A rank-4 300 x 200 matrix is observed on 20% of its entries (the training
 * set, CSR); another 5% are held out. U and V (rank 16) start small and
 * random and take gradient steps computed by objective_grad_U/V; every 100
 * steps the program prints the training objective and the held-out RMSE
 * (the objective kernel on the held-out entries). All arithmetic on U, V
 * and the ratings is done by the generated kernels.
 *
 *   matrix_completion [steps]      (default 600)
 */
#include "completion.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M = 300, N = 200, K = 16, TRUE_RANK = 4 };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(void) { /* xorshift64*, in [0, 1) */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static double normal(void) {
  double u = uniform() + 1e-12, v = uniform();
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A CSR matrix and its 0/1 pattern. */
typedef struct {
  int64_t pos[M + 1], *crd, nnz;
  float *val, *ones;
} Csr;

static void check(int status, const char *what) {
  if (status != completion_OK) {
    fprintf(stderr, "%s: %s\n", what, completion_last_error());
    exit(1);
  }
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 600;
  static float a[M][TRUE_RANK], b[N][TRUE_RANK], U[M][K], V[N][K];
  static float gU[M][K], gV[N][K], U2[M][K], V2[N][K];
  Csr train = {{0}, 0, 0, 0, 0}, test = {{0}, 0, 0, 0, 0};
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < TRUE_RANK; ++r)
      a[i][r] = (float)normal();
  for (int j = 0; j < N; ++j)
    for (int r = 0; r < TRUE_RANK; ++r)
      b[j][r] = (float)normal();
  /* Observed entries: 20% training, 5% held out, disjoint, row by row. */
  for (Csr *c = &train; c; c = c == &train ? &test : NULL) {
    c->crd = malloc(sizeof(int64_t) * M * N);
    c->val = malloc(sizeof(float) * M * N);
    c->ones = malloc(sizeof(float) * M * N);
  }
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double u = uniform();
      Csr *c = u < 0.20 ? &train : u < 0.25 ? &test : NULL;
      if (!c)
        continue;
      float r = 0;
      for (int k = 0; k < TRUE_RANK; ++k)
        r += a[i][k] * b[j][k];
      c->crd[c->nnz] = j;
      c->val[c->nnz] = r;
      c->ones[c->nnz++] = 1;
    }
    train.pos[i + 1] = train.nnz;
    test.pos[i + 1] = test.nnz;
  }
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k)
      U[i][k] = (float)(0.3 * normal());
  for (int j = 0; j < N; ++j)
    for (int k = 0; k < K; ++k)
      V[j][k] = (float)(0.3 * normal());
  printf("matrix completion: %dx%d, rank %d, %lld training and %lld held-out "
         "entries, rank-%d factors\n",
         M, N, TRUE_RANK, (long long)train.nnz, (long long)test.nnz, K);

  const float one = 1.0f;
  float first = 0, loss = 0, held = 0;
  for (int t = 0; t <= steps; ++t) {
    check(completion_objective(&U[0][0], &V[0][0], train.pos, train.crd,
                               train.val, train.nnz, train.pos, train.crd,
                               train.ones, train.nnz, &loss),
          "objective");
    if (t == 0)
      first = loss;
    if (t % 100 == 0 || t == steps) {
      check(completion_objective(&U[0][0], &V[0][0], test.pos, test.crd,
                                 test.val, test.nnz, test.pos, test.crd,
                                 test.ones, test.nnz, &held),
            "held-out objective");
      printf("step %4d: training objective %10.3f  held-out RMSE %.4f\n", t,
             loss, sqrt(2.0 * held / (double)test.nnz));
    }
    if (t == steps)
      break;
    check(completion_objective_grad_U(&U[0][0], &V[0][0], train.pos,
                                      train.crd, train.val, train.nnz,
                                      train.pos, train.crd, train.ones,
                                      train.nnz, &one, &gU[0][0]),
          "objective_grad_U");
    check(completion_objective_grad_V(&U[0][0], &V[0][0], train.pos,
                                      train.crd, train.val, train.nnz,
                                      train.pos, train.crd, train.ones,
                                      train.nnz, &one, &gV[0][0]),
          "objective_grad_V");
    /* The kernels' inputs and outputs may not overlap (restrict). */
    check(completion_step_U(&U[0][0], &gU[0][0], &U2[0][0]), "step_U");
    check(completion_step_V(&V[0][0], &gV[0][0], &V2[0][0]), "step_V");
    memcpy(U, U2, sizeof U);
    memcpy(V, V2, sizeof V);
  }
  printf("training objective %.3f -> %.3f (%.1f%% of the start)\n", first,
         loss, 100.0 * loss / first);
  for (Csr *c = &train; c; c = c == &train ? &test : NULL) {
    free(c->crd);
    free(c->val);
    free(c->ones);
  }
  return 0;
}

/* Links the installed sparsec runtime (Sparsec::runtime or
 * Sparsec::runtime_static) and prints its status names. */
#include <sparsec/runtime.h>
#include <stdio.h>

int main(void) {
  printf("sparsec runtime, ABI %d:", SPARSEC_ABI_VERSION);
  for (int s = SPARSEC_OK; s <= SPARSEC_ERR_ABI; ++s)
    printf(" %s", sparsec_status_name(s));
  printf("\n");
  return 0;
}

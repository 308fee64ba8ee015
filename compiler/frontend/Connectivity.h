//===- Connectivity.h - User connectivity files of sparse_linear -*- C++
//-*-===//
//
// `sparse_linear(in, out, connectivity = "file")` reads a (2, nnz) index
// file: two lines of integers (whitespace or commas between them, `#`
// comments, blank lines ignored), the output index of each connection on
// the first and its input index on the second, as in the `indices` of
// SparseLinear / a PyTorch COO weight. The file joins the SourceMgr, so a
// bad entry is reported at its own file:line:col.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_CONNECTIVITY_H
#define SPARSEC_FRONTEND_CONNECTIVITY_H

#include "Diagnostics.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sparsec {

/// Reads `path` (relative to the directory of the file holding `argLoc`)
/// as the pattern of an [out, in] weight and returns it in CSR form (rows
/// ascending, columns strictly ascending within a row). Reports every
/// problem (unreadable file, malformed or missing line, lengths that
/// differ, an index out of range, a duplicate connection) and returns
/// false.
bool loadConnectivity(DiagEngine &diags, llvm::SMLoc argLoc,
                      const std::string &path, int64_t out, int64_t in,
                      std::vector<int32_t> &positions,
                      std::vector<int32_t> &coordinates);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_CONNECTIVITY_H

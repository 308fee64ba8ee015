//===- Connectivity.h - User connectivity files of sparse_linear -*- C++
//-*-===//
//
// `sparse_linear(in, out, connectivity = "file")` reads a (2, nnz) index
// file: two lines of integers (whitespace or commas between them, `#`
// comments, blank lines ignored), the output index of each connection on
// the first and its input index on the second, as in the `indices` of
// SparseLinear / a PyTorch COO weight. The file joins the SourceMgr, so a
// bad entry is reported at its own file:line:col. The same pattern may be
// written inline, `connectivity = [[outputs...], [inputs...]]`.
//
//===----------------------------------------------------------------------===//

#ifndef SPARSEC_FRONTEND_CONNECTIVITY_H
#define SPARSEC_FRONTEND_CONNECTIVITY_H

#include "AST.h"
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

/// Checks two index lists (`lines`: outputs, then inputs; anything else is
/// reported at `start` or the third list with `countMessage` + the count)
/// and builds the CSR pattern, as loadConnectivity does for a file.
bool buildPattern(DiagEngine &diags,
                  const std::vector<std::vector<ast::IntEntry>> &lines,
                  llvm::SMLoc start, const llvm::Twine &countMessage,
                  int64_t out, int64_t in, std::vector<int32_t> &positions,
                  std::vector<int32_t> &coordinates);

/// The pattern of a `connectivity` / `mask` argument: a file name in quotes
/// (loadConnectivity) or an inline list `[[outputs...], [inputs...]]`
/// whose entries are reported where they are written.
bool readPattern(DiagEngine &diags, const ast::ArgValue &v,
                 llvm::StringRef what, int64_t out, int64_t in,
                 std::vector<int32_t> &positions,
                 std::vector<int32_t> &coordinates);

} // namespace sparsec

#endif // SPARSEC_FRONTEND_CONNECTIVITY_H

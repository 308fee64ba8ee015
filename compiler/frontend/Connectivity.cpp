//===- Connectivity.cpp - User connectivity files of sparse_linear --------===//
//
// Reads and checks a (2, nnz) connectivity file (see Connectivity.h).
//
//===----------------------------------------------------------------------===//

#include "Connectivity.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <numeric>

using namespace sparsec;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace {

using Entry = ast::IntEntry;

/// Splits the lines of `text` that hold data into integers; false on a
/// token that is not an integer (reported).
bool readLines(DiagEngine &diags, StringRef text,
               std::vector<std::vector<Entry>> &lines) {
  bool ok = true;
  while (!text.empty()) {
    auto [line, rest] = text.split('\n');
    text = rest;
    line = line.split('#').first;
    std::vector<Entry> entries;
    size_t i = 0;
    while (i < line.size()) {
      if (llvm::isSpace(line[i]) || line[i] == ',') {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < line.size() && !llvm::isSpace(line[j]) && line[j] != ',')
        ++j;
      StringRef token = line.slice(i, j);
      int64_t v;
      SMLoc loc = SMLoc::getFromPointer(token.data());
      if (token.getAsInteger(10, v)) {
        diags.error(loc, "'" + token + "' is not an integer index");
        ok = false;
      } else {
        entries.push_back({v, loc});
      }
      i = j;
    }
    if (!entries.empty())
      lines.push_back(std::move(entries));
  }
  return ok;
}

} // namespace

bool sparsec::loadConnectivity(DiagEngine &diags, SMLoc argLoc,
                               const std::string &path, int64_t out, int64_t in,
                               std::vector<int32_t> &positions,
                               std::vector<int32_t> &coordinates) {
  llvm::SourceMgr &sm = diags.getSourceMgr();
  llvm::SmallString<256> full(path);
  if (!llvm::sys::path::is_absolute(full)) {
    if (unsigned id = sm.FindBufferContainingLoc(argLoc)) {
      StringRef dir = llvm::sys::path::parent_path(
          sm.getMemoryBuffer(id)->getBufferIdentifier());
      full = dir;
      llvm::sys::path::append(full, path);
    }
  }
  auto file = llvm::MemoryBuffer::getFile(full, /*IsText=*/true);
  if (!file) {
    diags.error(argLoc, "cannot read connectivity file '" + full +
                            "': " + file.getError().message());
    return false;
  }
  StringRef text = (*file)->getBuffer();
  SMLoc start = SMLoc::getFromPointer(text.data());
  sm.AddNewSourceBuffer(std::move(*file), argLoc);

  std::vector<std::vector<Entry>> lines;
  if (!readLines(diags, text, lines))
    return false;
  return buildPattern(diags, lines, start,
                      "a connectivity file has two lines of indices (outputs, "
                      "then inputs); '" +
                          full + "' has ",
                      out, in, positions, coordinates);
}

bool sparsec::buildPattern(DiagEngine &diags,
                           const std::vector<std::vector<ast::IntEntry>> &lines,
                           SMLoc start, const Twine &countMessage, int64_t out,
                           int64_t in, std::vector<int32_t> &positions,
                           std::vector<int32_t> &coordinates) {
  auto locOf = [&](const std::vector<Entry> &list) {
    return list.empty() ? start : list.front().loc;
  };
  if (lines.size() != 2) {
    diags.error(lines.size() > 2 ? locOf(lines[2]) : start,
                countMessage + Twine(lines.size()));
    return false;
  }
  const std::vector<Entry> &rows = lines[0], &cols = lines[1];
  if (rows.size() != cols.size()) {
    diags.error(locOf(cols), Twine(cols.size()) + " input indices for " +
                                 Twine(rows.size()) + " output indices");
    return false;
  }
  bool ok = true;
  for (auto [list, bound, what] :
       {std::tuple(&rows, out, "output"), std::tuple(&cols, in, "input")})
    for (const Entry &e : *list)
      if (e.value < 0 || e.value >= bound) {
        diags.error(e.loc, Twine(what) + " index " + Twine(e.value) +
                               " is out of range [0, " + Twine(bound) + ")");
        ok = false;
      }
  if (!ok)
    return false;
  // CSR order; a stable sort keeps the first of two equal connections
  // first, for the duplicate message.
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(rows[a].value, cols[a].value) <
           std::pair(rows[b].value, cols[b].value);
  });
  positions.assign(out + 1, 0);
  coordinates.clear();
  for (size_t k = 0; k < order.size(); ++k) {
    size_t i = order[k];
    if (k > 0 && rows[order[k - 1]].value == rows[i].value &&
        cols[order[k - 1]].value == cols[i].value) {
      diags.error(rows[i].loc, "duplicate connection (" + Twine(rows[i].value) +
                                   ", " + Twine(cols[i].value) + ")");
      diags.note(rows[order[k - 1]].loc, "first given here");
      ok = false;
      continue;
    }
    ++positions[rows[i].value + 1];
    coordinates.push_back(static_cast<int32_t>(cols[i].value));
  }
  for (int64_t r = 0; r < out; ++r)
    positions[r + 1] += positions[r];
  return ok;
}

bool sparsec::readPattern(DiagEngine &diags, const ast::ArgValue &v,
                          StringRef what, int64_t out, int64_t in,
                          std::vector<int32_t> &positions,
                          std::vector<int32_t> &coordinates) {
  if (v.kind == ast::ArgValue::Kind::List)
    return buildPattern(diags, v.rows, v.loc,
                        "an inline " + what +
                            " list has two lists of indices (outputs, then "
                            "inputs); this one has ",
                        out, in, positions, coordinates);
  return loadConnectivity(diags, v.loc, v.text, out, in, positions,
                          coordinates);
}

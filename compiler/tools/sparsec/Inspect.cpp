//===- Inspect.cpp - sparsec inspect: what a checkpoint holds -------------===//
//
// `sparsec inspect CKPT [--masks DIR]` reads a checkpoint written by a
// generated library (safetensors, runtime/src/checkpoint.c) and prints the
// model, step and learning rate, then one line per parameter: layout,
// shape, stored values, the share of zeros and the storage format, and the
// optimizer state it carries. With --masks, each CSR parameter's sparsity
// pattern and each masked layer's 0/1 mask (a dense `..._mask` tensor, its
// trailing dims flattened) is written as DIR/<name>.png: one grey pixel per
// block of the out x in matrix (at most 1024 per side; black = every
// position of the block stored / kept, white = none).
//
//===----------------------------------------------------------------------===//

#include "Inspect.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CRC.h"
#include "llvm/Support/Compression.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using llvm::StringRef;

namespace {

struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  const char *data = nullptr; // begin in the file
  size_t bytes = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

struct Checkpoint {
  std::unique_ptr<llvm::MemoryBuffer> file;
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors; // by name (sorted)
};

int fail(const llvm::Twine &msg) {
  llvm::errs() << "sparsec inspect: error: " << msg << "\n";
  return 1;
}

/// Parses the safetensors framing; on failure returns the reason.
std::string parse(StringRef path, Checkpoint &ck) {
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file)
    return "cannot read '" + path.str() + "': " + file.getError().message();
  ck.file = std::move(*file);
  StringRef bytes = ck.file->getBuffer();
  if (bytes.size() < 8)
    return "'" + path.str() + "' is too short for a safetensors file";
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i)
    len = (len << 8) | static_cast<unsigned char>(bytes[i]);
  if (len > bytes.size() - 8)
    return "'" + path.str() + "': the header length " + std::to_string(len) +
           " exceeds the file";
  StringRef data = bytes.drop_front(8 + len);
  llvm::Expected<llvm::json::Value> header =
      llvm::json::parse(bytes.substr(8, len));
  if (!header)
    return "'" + path.str() +
           "': the header is not JSON: " + llvm::toString(header.takeError());
  const llvm::json::Object *obj = header->getAsObject();
  if (!obj)
    return "'" + path.str() + "': the header is not a JSON object";
  for (const auto &[key, value] : *obj) {
    const llvm::json::Object *o = value.getAsObject();
    if (!o)
      return "'" + path.str() + "': entry '" + key.str() +
             "' is not an object";
    if (key == "__metadata__") {
      for (const auto &[k, v] : *o)
        if (std::optional<StringRef> s = v.getAsString())
          ck.meta[k.str()] = s->str();
      continue;
    }
    Tensor t;
    const llvm::json::Array *shape = o->getArray("shape");
    const llvm::json::Array *offsets = o->getArray("data_offsets");
    std::optional<StringRef> dtype = o->getString("dtype");
    if (!shape || !offsets || offsets->size() != 2 || !dtype)
      return "'" + path.str() + "': tensor '" + key.str() +
             "' lacks dtype, shape or data_offsets";
    t.dtype = dtype->str();
    for (const llvm::json::Value &d : *shape)
      t.shape.push_back(d.getAsInteger().value_or(-1));
    std::optional<int64_t> b = (*offsets)[0].getAsInteger(),
                           e = (*offsets)[1].getAsInteger();
    if (!b || !e || *b < 0 || *e < *b || uint64_t(*e) > data.size() ||
        llvm::any_of(t.shape, [](int64_t d) { return d < 0; }))
      return "'" + path.str() + "': tensor '" + key.str() +
             "' has a bad shape or data range";
    t.data = data.data() + *b;
    t.bytes = size_t(*e - *b);
    ck.tensors[key.str()] = t;
  }
  return "";
}

std::string shapeText(const std::vector<int64_t> &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i)
    r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

size_t countZeros(const Tensor &t) {
  size_t zeros = 0, n = t.bytes / 4;
  for (size_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, t.data + 4 * i, 4);
    zeros += v == 0.0f;
  }
  return zeros;
}

/// Appends a PNG chunk (length, type, data, CRC of type + data).
void chunk(std::string &png, StringRef type, StringRef data) {
  uint32_t n = uint32_t(data.size());
  for (int s = 24; s >= 0; s -= 8)
    png += char((n >> s) & 0xff);
  std::string body = type.str() + data.str();
  png += body;
  uint32_t crc = llvm::crc32(llvm::arrayRefFromStringRef(body));
  for (int s = 24; s >= 0; s -= 8)
    png += char((crc >> s) & 0xff);
}

/// Calls its argument with (row, column) of every position of a pattern.
using PatternVisitor =
    llvm::function_ref<void(llvm::function_ref<void(int64_t, int64_t)>)>;

/// Writes a [rows, cols] pattern (the positions `visit` reports) as a grey
/// PNG.
std::string writeMask(StringRef path, int64_t rows, int64_t cols,
                      PatternVisitor visit) {
  if (!llvm::compression::zlib::isAvailable())
    return "this build of LLVM has no zlib; cannot write PNG files";
  const int64_t maxSide = 1024;
  int64_t by = std::max<int64_t>(1, (rows + maxSide - 1) / maxSide);
  int64_t bx = std::max<int64_t>(1, (cols + maxSide - 1) / maxSide);
  int64_t h = (rows + by - 1) / by, w = (cols + bx - 1) / bx;
  std::vector<uint32_t> count(size_t(h * w), 0);
  visit([&](int64_t r, int64_t c) { ++count[size_t((r / by) * w + c / bx)]; });
  std::string raw;
  raw.reserve(size_t(h * (w + 1)));
  for (int64_t y = 0; y < h; ++y) {
    raw += '\0'; // filter: none
    int64_t cellRows = std::min(by, rows - y * by);
    for (int64_t x = 0; x < w; ++x) {
      double cells = double(cellRows * std::min(bx, cols - x * bx));
      double density = count[size_t(y * w + x)] / cells;
      raw += char(static_cast<unsigned char>(
          std::lround(255.0 * (1.0 - std::min(1.0, density)))));
    }
  }
  llvm::SmallVector<uint8_t, 0> z;
  llvm::compression::zlib::compress(llvm::arrayRefFromStringRef(raw), z);
  std::string png = "\x89PNG\r\n\x1a\n", ihdr;
  for (uint32_t v : {uint32_t(w), uint32_t(h)})
    for (int s = 24; s >= 0; s -= 8)
      ihdr += char((v >> s) & 0xff);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5); // 8-bit grey
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", llvm::toStringRef(z));
  chunk(png, "IEND", "");
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return "cannot write '" + path.str() + "': " + ec.message();
  os << png;
  return "";
}

int32_t i32At(const Tensor &t, int64_t i) {
  int32_t v;
  std::memcpy(&v, t.data + 4 * i, 4);
  return v;
}

/// Writes DIR/<name>.png and says so; returns an error message or "".
std::string writeMaskFile(StringRef dir, StringRef name, int64_t rows,
                          int64_t cols, PatternVisitor visit) {
  llvm::SmallString<256> png(dir);
  llvm::sys::path::append(png, name + ".png");
  if (std::string err = writeMask(png, rows, cols, visit); !err.empty())
    return err;
  llvm::outs() << "  mask: " << png << "\n";
  return "";
}

/// A masked layer's 0/1 mask (`<layer>.weight_mask`, `.weight_ih_mask`,
/// ...): an F32 tensor whose name ends in "_mask".
bool isDenseMask(StringRef name, const Tensor &t) {
  return name.ends_with("_mask") && t.dtype == "F32" && t.shape.size() >= 2;
}

} // namespace

int sparsec::runInspect(llvm::ArrayRef<const char *> args) {
  std::string path, masks;
  for (size_t i = 0; i < args.size(); ++i) {
    StringRef a = args[i];
    if (a == "--help" || a == "-h") {
      llvm::outs() << "usage: sparsec inspect CHECKPOINT [--masks DIR]\n"
                      "Prints each parameter's layout, shape, stored values, "
                      "sparsity and format;\n--masks DIR writes the pattern "
                      "of each CSR parameter and of each masked layer's\n"
                      "mask (<layer>.weight_mask, ...) as DIR/<name>.png.\n";
      return 0;
    }
    if (a == "--masks" || a.starts_with("--masks=")) {
      if (a == "--masks" && i + 1 >= args.size())
        return fail("--masks needs a directory");
      masks = a == "--masks" ? args[++i] : a.drop_front(8).str();
    } else if (a.starts_with("-")) {
      return fail("unknown option '" + a + "' (see sparsec inspect --help)");
    } else if (path.empty()) {
      path = a.str();
    } else {
      return fail("one checkpoint at a time (got '" + path + "' and '" + a +
                  "')");
    }
  }
  if (path.empty())
    return fail("no checkpoint given (usage: sparsec inspect CHECKPOINT "
                "[--masks DIR])");
  Checkpoint ck;
  if (std::string err = parse(path, ck); !err.empty())
    return fail(err);
  auto meta = [&](StringRef k) {
    auto it = ck.meta.find(k.str());
    return it == ck.meta.end() ? std::string("?") : it->second;
  };
  llvm::outs() << path << ": model " << meta("model") << ", step "
               << meta("step") << ", lr " << meta("lr") << ", optimizer "
               << meta("optimizer") << "\n";
  if (!masks.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(masks))
      return fail("cannot create '" + masks + "': " + ec.message());
  llvm::outs() << llvm::formatv("{0,-24} {1,-6} {2,-16} {3,12} {4,10}  {5}\n",
                                "parameter", "layout", "shape", "stored",
                                "sparsity", "format");
  size_t states = 0;
  for (const auto &[name, t] : ck.tensors) {
    StringRef n = name;
    if (n.starts_with("optimizer.")) {
      ++states;
      continue;
    }
    if (n.ends_with(".crow_indices") || n.ends_with(".col_indices"))
      continue;
    if (n.ends_with(".values") &&
        ck.tensors.count(n.drop_back(7).str() + ".crow_indices")) {
      std::string base = n.drop_back(7).str();
      const Tensor &pos = ck.tensors[base + ".crow_indices"];
      const Tensor &crd = ck.tensors[base + ".col_indices"];
      std::string size = meta(base + ".size");
      auto dims = llvm::json::parse(size);
      int64_t rows = pos.numel() - 1, cols = -1;
      if (dims && dims->getAsArray() && dims->getAsArray()->size() == 2)
        cols = (*dims->getAsArray())[1].getAsInteger().value_or(-1);
      if (cols < 1 || pos.bytes != size_t(4 * (rows + 1)) ||
          crd.bytes != t.bytes || t.dtype != "F32")
        return fail("'" + path + "': CSR parameter '" + base +
                    "' is inconsistent (size " + size + ")");
      double density = double(t.numel()) / (double(rows) * double(cols));
      llvm::outs() << llvm::formatv(
          "{0,-24} {1,-6} {2,-16} {3,12} {4,9:F2}%  CSR (i32 indices, "
          "{5} stored zeros)\n",
          base, "csr", shapeText({rows, cols}), t.numel(),
          100.0 * (1.0 - density), countZeros(t));
      if (!masks.empty())
        if (std::string err = writeMaskFile(
                masks, base, rows, cols,
                [&](llvm::function_ref<void(int64_t, int64_t)> at) {
                  for (int64_t r = 0; r < rows; ++r)
                    for (int32_t i = i32At(pos, r); i < i32At(pos, r + 1);
                         ++i)
                      at(r, i32At(crd, i));
                });
            !err.empty())
          return fail(err);
      continue;
    }
    size_t zeros = t.dtype == "F32" ? countZeros(t) : 0;
    llvm::outs() << llvm::formatv(
        "{0,-24} {1,-6} {2,-16} {3,12} {4,9:F2}%  dense {5}\n", name,
        "dense", shapeText(t.shape), t.numel(),
        t.numel() ? 100.0 * double(zeros) / double(t.numel()) : 0.0,
        t.dtype);
    if (!masks.empty() && isDenseMask(n, t)) {
      const Tensor &m = t;
      // [out, in, ...] drawn as out rows of in * ... columns (a conv's
      // mask: one row per output channel).
      int64_t rows = m.shape[0], cols = rows ? m.numel() / rows : 0;
      if (std::string err = writeMaskFile(
              masks, n, rows, cols,
              [&](llvm::function_ref<void(int64_t, int64_t)> at) {
                for (int64_t e = 0, end = m.numel(); e < end; ++e) {
                  float v;
                  std::memcpy(&v, m.data + 4 * e, 4);
                  if (v != 0.0f)
                    at(e / cols, e % cols);
                }
              });
          !err.empty())
        return fail(err);
    }
  }
  llvm::outs() << "optimizer state: " << states << " tensor"
               << (states == 1 ? "" : "s") << "\n";
  return 0;
}

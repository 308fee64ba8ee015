//===- idx.cpp - Reader of (gzipped) IDX files ----------------------------===//
//
// IDX: big-endian magic (0x00000803 images, 0x00000801 labels), dimension
// sizes, then unsigned bytes. Files are read through zlib.
//
//===----------------------------------------------------------------------===//

#include "idx.h"

#include <zlib.h>

namespace {

bool readAll(const std::string &path, std::vector<unsigned char> &data,
             std::string &error) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    error = "cannot open " + path +
            " (install Debian's dataset-fashion-mnist package)";
    return false;
  }
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0)
    data.insert(data.end(), buf, buf + n);
  bool ok = n == 0;
  gzclose(f);
  if (!ok)
    error = "cannot decompress " + path;
  return ok;
}

uint32_t be32(const unsigned char *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 |
         uint32_t(p[3]);
}

} // namespace

bool loadDataset(const std::string &dir, const std::string &prefix,
                 Dataset &out, std::string &error) {
  std::string imgPath = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  std::string lblPath = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  std::vector<unsigned char> img, lbl;
  if (!readAll(imgPath, img, error) || !readAll(lblPath, lbl, error))
    return false;
  if (img.size() < 16 || be32(img.data()) != 0x803 || lbl.size() < 8 ||
      be32(lbl.data()) != 0x801) {
    error = "bad IDX header in " + imgPath + " or " + lblPath;
    return false;
  }
  uint64_t count = be32(img.data() + 4);
  uint64_t features = uint64_t(be32(img.data() + 8)) * be32(img.data() + 12);
  if (be32(lbl.data() + 4) != count || img.size() != 16 + count * features ||
      lbl.size() != 8 + count) {
    error = "inconsistent sizes in " + imgPath + " / " + lblPath;
    return false;
  }
  out.count = int64_t(count);
  out.features = int64_t(features);
  out.images.resize(count * features);
  for (uint64_t i = 0; i < count * features; ++i)
    out.images[i] = img[16 + i] / 255.0f;
  out.labels.resize(count);
  for (uint64_t i = 0; i < count; ++i)
    out.labels[i] = lbl[8 + i];
  return true;
}

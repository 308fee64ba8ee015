//===- idx.h - Reader of (gzipped) IDX files --------------------*- C++ -*-===//
//
// Reads the IDX format of (Fashion-)MNIST: images as float32 in [0, 1],
// labels as int64.
//
//===----------------------------------------------------------------------===//

#ifndef FASHION_MNIST_IDX_H
#define FASHION_MNIST_IDX_H

#include <cstdint>
#include <string>
#include <vector>

struct Dataset {
  std::vector<float> images; // count x rows*cols, row-major
  std::vector<int64_t> labels;
  int64_t count = 0;
  int64_t features = 0;
};

/// Reads `<dir>/<prefix>-images-idx3-ubyte.gz` and the matching labels.
/// Returns false and sets `error` on failure.
bool loadDataset(const std::string &dir, const std::string &prefix,
                 Dataset &out, std::string &error);

#endif // FASHION_MNIST_IDX_H

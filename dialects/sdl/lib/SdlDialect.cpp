//===- SdlDialect.cpp - The sdl dialect -----------------------------------===//
//
// Registers the operations of the `sdl` dialect.
//
//===----------------------------------------------------------------------===//

#include "sdl/SdlDialect.h"

using namespace mlir;
using namespace mlir::sdl;

#include "sdl/SdlOpsDialect.cpp.inc"

void SdlDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "sdl/SdlOps.cpp.inc"
      >();
}

bool mlir::sdl::isSparse(Type type) {
  return static_cast<bool>(sparse_tensor::getSparseTensorEncoding(type));
}

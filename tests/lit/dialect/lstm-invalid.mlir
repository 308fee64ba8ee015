// Every diagnostic of the masked LSTM verifiers
// (dialects/sdl/lib/SdlLstmOps.cpp), after a valid pair of ops.
// RUN: sparsec-opt %s -split-input-file -verify-diagnostics

func.func @ok(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %b: tensor<8xf32>, %dy: tensor<?x2xf32>) -> tensor<8xf32> {
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh, %b, %b {last} : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<4x?x12xf32>)
  %dx, %dwi, %dwh, %db = sdl.masked_lstm_grad %dy, %x, %wi, %wi, %wh, %wh, %s {last} : (tensor<?x2xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<4x?x12xf32>) -> (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8xf32>)
  return %db : tensor<8xf32>
}

// -----

func.func @rank(%x: tensor<?x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op input must be an f32 tensor [B, T, I] ([T, B, I] with seq_first) with static T and I}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh : (tensor<?x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<?x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @wih(%x: tensor<?x3x5xf32>, %wi: tensor<6x5xf32>, %wh: tensor<8x2xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op weight_ih must be a static f32 tensor [4H, I]}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh : (tensor<?x3x5xf32>, tensor<6x5xf32>, tensor<6x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @whh(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x3xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op weight_hh must be tensor<8x2xf32>}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x3xf32>, tensor<8x3xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @mask(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %m: tensor<8x5xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op each mask must have the type of its weight}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %m : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x5xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @value(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op the layer's value must be tensor<BxTxHxf32>}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<?x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @stash(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op stash must be tensor<4xBx12xf32>}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<?x3x2xf32>, tensor<3x?x12xf32>)
  return
}

// -----

func.func @bias(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op takes no bias or two (bias_ih, bias_hh)}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh, %b : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<8xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @biastype(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op biases must be 'tensor<8xf32>'}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh, %b, %b : (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  return
}

// -----

func.func @grads(%x: tensor<?x3x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>, %dy: tensor<?x3x2xf32>, %s: tensor<4x?x12xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm_grad' op gradients must have the types of the input, the weights and the bias}}
  %dx, %dwi, %dwh, %db = sdl.masked_lstm_grad %dy, %x, %wi, %wi, %wh, %wh, %s : (tensor<?x3x2xf32>, tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<4x?x12xf32>) -> (tensor<?x3x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<2xf32>)
  return
}

// -----

func.func @seqvalue(%x: tensor<3x?x5xf32>, %wi: tensor<8x5xf32>, %wh: tensor<8x2xf32>) {
  // expected-error @+1 {{'sdl.masked_lstm' op the layer's value must be tensor<TxBxHxf32>}}
  %y, %s = sdl.masked_lstm %x, %wi, %wi, %wh, %wh {seq_first} : (tensor<3x?x5xf32>, tensor<8x5xf32>, tensor<8x5xf32>, tensor<8x2xf32>, tensor<8x2xf32>) -> (tensor<?x3x2xf32>, tensor<4x?x12xf32>)
  return
}

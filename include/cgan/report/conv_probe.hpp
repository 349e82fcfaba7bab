// The convolution probe's report (`cgan_gpu bench --conv-probe`): for every conv of a model, every
// direction and every layout/precision variant, the fastest deterministic algorithm and the fastest
// of any kind, as a Markdown table and as JSON (every row the backend measured).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/backend/backend.hpp"

namespace cgan {

struct ConvProbeEntry {
  std::string model;  // generator | discriminator
  int layer = 0;      // spec layer index
  ConvShape shape;
  std::vector<ConvProbeRow> rows;  // Backend::conv_probe(shape)
};

// 2 N K P Q C R S: the multiply-adds of the unpadded convolution, counted twice.
double conv_flops(const ConvShape& s);

// The row of `rows` with direction d and variant v that ran ("ok") in the least time, among the
// deterministic ones when `deterministic`; nullptr when there is none.
const ConvProbeRow* fastest(const std::vector<ConvProbeRow>& rows, const std::string& direction,
                            const std::string& variant, bool deterministic);

// One row per conv, direction and variant: the fastest deterministic algorithm (ms, algorithm,
// math, workspace, TFLOP/s of the unpadded work) and the fastest of any kind; then per variant the
// sum over every conv and direction of the fastest deterministic times (what a step would spend in
// convolutions with that variant), "none" where some direction has no deterministic algorithm.
std::string conv_probe_table(const std::vector<ConvProbeEntry>& entries);
nlohmann::json conv_probe_json(const std::vector<ConvProbeEntry>& entries);

}  // namespace cgan

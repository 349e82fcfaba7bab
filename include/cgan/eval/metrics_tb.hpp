// The evaluator's figures in a run's TensorBoard log: each metrics.csv column as the scalar "metrics/<column>".
#pragma once
#include <cstdint>

#include "cgan/eval/evaluate.hpp"
#include "cgan/report/tb_log.hpp"

namespace cgan {

// The values are those of the metrics.csv row (EvalResult::csv_columns) read back.
void log_metrics(TbLog& tb, int64_t step, const EvalResult& r);

}  // namespace cgan

#include "cgan/eval/metrics_tb.hpp"

namespace cgan {

void log_metrics(TbLog& tb, int64_t step, const EvalResult& r) {
  std::vector<std::pair<std::string, std::string>> cols = r.csv_columns();
  for (auto& c : cols) c.first = "metrics/" + c.first;
  tb.scalars(step, cols);
}

}  // namespace cgan

// Trainer::EvalState: the evaluator's state during training (config "eval"), private to src/train.
#pragma once
#include <memory>

#include "cgan/eval/classifier.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/train/trainer.hpp"

namespace cgan {

// The classifier, the real test features, and a generator view sharing G's parameters.
struct Trainer::EvalState {
  std::unique_ptr<Classifier> clf;
  RealReference real;
  ImageSource source;
};

}  // namespace cgan

#include "cgan/backend.hpp"

#include "cgan/error.hpp"

namespace cgan {

bool cuda_compiled() {
#ifdef CGAN_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

#ifndef CGAN_HAVE_CUDA
bool cuda_available(std::string* why_not) {
  if (why_not) *why_not = "this build of cgan_gpu has no CUDA backend (no CUDA toolkit at build time)";
  return false;
}
#endif

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda" || device == "auto") {
    std::string why;
    if (cuda_available(&why)) {
#ifdef CGAN_HAVE_CUDA
      return make_cuda_backend();
#endif
    }
    if (device == "auto") return make_cpu_backend();
    throw Error(cat("--device cuda: ", why));
  }
  throw Error(cat("--device: expected auto, cpu or cuda, got '", device, "'"));
}

}  // namespace cgan

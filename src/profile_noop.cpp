// ProfileRange without CUDA: nothing to mark. (CUDA builds define it in cuda/profile_nvtx.cpp.)
#include "cgan/profile.hpp"

#ifndef CGAN_HAVE_CUDA
namespace cgan {

ProfileRange::ProfileRange(const char*) {}
ProfileRange::~ProfileRange() {}

}  // namespace cgan
#endif

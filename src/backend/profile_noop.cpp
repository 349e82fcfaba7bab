// ProfileRange's NVTX side without CUDA: nothing to mark. (CUDA builds define it in
// cuda/profile_nvtx.cpp; the rest of ProfileRange is src/backend/profile.cpp.)
#ifndef CGAN_HAVE_CUDA
namespace cgan {
namespace detail {

void range_push(const char*) {}
void range_pop() {}

}  // namespace detail
}  // namespace cgan
#endif

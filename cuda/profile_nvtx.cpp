// ProfileRange's NVTX side (include/cgan/backend/profile.hpp; the rest is src/backend/profile.cpp): an NVTX
// push/pop range. NVTX 3 is header-only and costs next to nothing when no profiler is attached.
#include <nvtx3/nvToolsExt.h>

namespace cgan {
namespace detail {

void range_push(const char* name) { nvtxRangePushA(name ? name : "?"); }
void range_pop() { nvtxRangePop(); }

}  // namespace detail
}  // namespace cgan

// ProfileRange (include/cgan/profile.hpp) as an NVTX push/pop range. NVTX 3 is header-only and
// costs next to nothing when no profiler is attached.
#include <nvtx3/nvToolsExt.h>

#include "cgan/profile.hpp"

namespace cgan {

ProfileRange::ProfileRange(const char* name) { nvtxRangePushA(name ? name : "?"); }
ProfileRange::~ProfileRange() { nvtxRangePop(); }

}  // namespace cgan

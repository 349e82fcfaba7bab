// Profiling marks: a ProfileRange names a phase of the run ("data", "d_step", "g_step",
// "optimizer", ...) from its construction to its destruction. In CUDA builds it is an NVTX range
// (visible in Nsight Systems, and usable as an Nsight Compute filter); otherwise it does nothing.
//
//   { ProfileRange r("d_step"); ...D step... }
//
// Ranges nest; open and close one on the same thread. The name must outlive the constructor call
// only (NVTX copies it).
#pragma once

namespace cgan {

struct ProfileRange {
  explicit ProfileRange(const char* name);
  ~ProfileRange();
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;
};

}  // namespace cgan

// Which checkpoint `--resume` means: a file, `latest` (of --out DIR, or of out/<name> for --config),
// or a run directory (its newest complete checkpoint).
#pragma once
#include <string>

#include "cgan/base/safetensors.hpp"
#include "cgan/train/session.hpp"

namespace cgan {

struct ResumeTarget {
  std::string path;  // the checkpoint file
  SafeTensors ck;    // its content, read and validated
};

// Resolves o.resume (non-empty):
//  - a file: that checkpoint;
//  - "latest": the newest checkpoint of the run directory o.out_dir, or, without --out, of
//    out/<name> of o.config_path (with o.sets applied); neither given is a UsageError;
//  - a directory: a run directory, whose newest checkpoint is taken.
// The newest is the highest step_N.safetensors in <dir>/checkpoints (temporaries skipped; see
// list_checkpoints). It is read and validated in full; a damaged newest checkpoint is refused with
// one line naming it and the older one to resume from instead (never a silent fall-back: the
// steps since the older one would be lost unnoticed). A directory that is not a run directory, or
// one without checkpoints, is a one-line Error naming it.
ResumeTarget resolve_resume(const SessionOptions& o);

}  // namespace cgan

// `cgan_gpu export`: a checkpoint's generator as an ONNX or TorchScript file, written by
// tools/cgan_torch.py export under Debian's PyTorch (docs/DECISIONS.md says why through PyTorch).
#pragma once
#include <string>
#include <vector>

namespace cgan::cli {

// The help entry: usage lines and options section (arrays, so that a static table may point at them).
extern const char kExportUsage[];
extern const char kExportOptions[];

// Runs `cgan_gpu export ARGS` (ARGS: what follows "export") and returns the exit code: 0 written;
// 1 bad input (the checkpoint, the output path, the Python side; one line on stderr, no output file);
// 2 bad command line. Bad input found before Python runs is thrown as cgan::Error.
// The tool is $CGAN_TOOLS_DIR/cgan_torch.py (default: the source tree's tools/), run by $CGAN_PYTHON
// (default /usr/bin/python3, Debian's python3-torch).
int export_command(const std::vector<std::string>& args);

}  // namespace cgan::cli

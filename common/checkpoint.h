// Atomic checkpoint files: a checkpoint is either the previous complete one or the new complete
// one, whatever instant the process dies at (write to a temporary file, fsync it, rename it over
// the old one, fsync the directory — the POSIX recipe; platform.md §5). Each file carries a magic
// number, its payload length and an FNV-1a checksum, so a torn or foreign file is detected rather
// than trusted.
#pragma once

#include <optional>
#include <string>

namespace gdlab {

// Writes `payload` to `path` atomically, creating its directory if needed. Throws StoreError.
void write_checkpoint(const std::string& path, const std::string& payload);
// The payload of the checkpoint at `path`; nullopt if there is none. Throws StoreError naming the
// file if it exists but is not a valid checkpoint.
std::optional<std::string> read_checkpoint(const std::string& path);
// Removes the checkpoint at `path` if present (and fsyncs its directory).
void remove_checkpoint(const std::string& path);

}  // namespace gdlab

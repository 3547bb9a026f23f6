// The client side of `gdlab serve`: gdlab submit | list | status | watch | cancel | shutdown.
#pragma once

#include <string>
#include <vector>

namespace gdlab {

// Exit codes of the client commands (documented in docs/service.md):
inline constexpr int kClientOk = 0;           // done; for watch: the campaign completed
inline constexpr int kClientFailed = 1;       // the server said no (not found, not running) or, for
                                              // watch, the campaign ended failed/cancelled/drained
inline constexpr int kClientBadInput = 2;     // bad arguments, an invalid spec, a refused token
inline constexpr int kClientUnreachable = 3;  // cannot connect, or the connection broke

// Runs one client command (`command` is "submit", "list", ...; `args` the rest of the line).
int client_main(const std::string& command, const std::vector<std::string>& args);

bool is_client_command(const std::string& command);

}  // namespace gdlab

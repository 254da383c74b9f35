#include "server/protocol/request.h"

namespace memshard {

absl::string_view CommandName(Command command) {
  switch (command) {
#define MEMSHARD_COMMAND_NAME(name, wire) \
  case Command::name:                     \
    return wire;
    MEMSHARD_TEXT_COMMANDS(MEMSHARD_COMMAND_NAME)
#undef MEMSHARD_COMMAND_NAME
    case Command::kNone:
      break;
  }
  return "";
}

}  // namespace memshard

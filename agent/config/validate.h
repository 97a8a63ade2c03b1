// Second pass: checks that need more than one field at a time (uniqueness,
// containment, conflicts between services, whole-config limits). Runs on the
// decoded Snapshot, using the recorded sites to point at the offending item.
#pragma once

#include "config/decode.h"
#include "config/diagnostics.h"

namespace nodemesh::config {

void validateSnapshot(const Decoded& decoded, Diagnostics& diag);

}  // namespace nodemesh::config

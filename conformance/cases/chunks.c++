#include "common.h"

namespace shoal::conformance {
void chunkCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

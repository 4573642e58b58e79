#include "common.h"

namespace shoal::conformance {
void requestCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

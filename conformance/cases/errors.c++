#include "common.h"

namespace shoal::conformance {
void errorCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

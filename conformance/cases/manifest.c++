#include "common.h"

namespace shoal::conformance {
void manifestCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

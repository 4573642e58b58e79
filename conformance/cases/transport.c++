#include "common.h"

namespace shoal::conformance {
void transportCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

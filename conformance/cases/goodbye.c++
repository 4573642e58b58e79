#include "common.h"

namespace shoal::conformance {
void goodbyeCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

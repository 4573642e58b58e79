#include "common.h"

namespace shoal::conformance {
void livenessCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

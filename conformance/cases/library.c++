#include "common.h"

namespace shoal::conformance {
void libraryCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

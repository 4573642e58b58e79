#include "common.h"

namespace shoal::conformance {
void handshakeCases(kj::Vector<CaseSpec>&) {}
}  // namespace shoal::conformance

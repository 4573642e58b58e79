// The suite's case list, area by area, in a stable order.
#include <shoal/conformance/case.h>

namespace shoal::conformance {

kj::Array<CaseSpec> allCases() {
  kj::Vector<CaseSpec> out;
  transportCases(out);
  framingCases(out);
  handshakeCases(out);
  requestCases(out);
  libraryCases(out);
  manifestCases(out);
  chunkCases(out);
  livenessCases(out);
  goodbyeCases(out);
  errorCases(out);
  downloadCases(out);
  discoveryCases(out);
  return out.releaseAsArray();
}

}  // namespace shoal::conformance

#include <shoal/peer/mutant.h>

#include <kj/debug.h>

namespace shoal::peer {

#if SHOAL_MUTANTS

namespace mutant_detail {
Mutant active = Mutant::none;
}  // namespace mutant_detail

namespace {

// Names are stable: the committed mutation matrix (conformance/mutation-matrix.json) uses them.
const MutantInfo kMutants[] = {
    {Mutant::corruptChunks, "corrupt-chunks", "chunks", "CHK-2",
     "flips one byte of every Chunk it serves"},
};

}  // namespace

kj::ArrayPtr<const MutantInfo> allMutants() {
  return kMutants;
}

void activateMutant(Mutant m) {
  mutant_detail::active = m;
}

Mutant activeMutant() {
  return mutant_detail::active;
}

#else

kj::ArrayPtr<const MutantInfo> allMutants() {
  return nullptr;
}

void activateMutant(Mutant m) {
  KJ_REQUIRE(m == Mutant::none, "this build has no mutants (SHOAL_MUTANTS is off)");
}

Mutant activeMutant() {
  return Mutant::none;
}

#endif

kj::Maybe<const MutantInfo&> findMutant(kj::StringPtr name) {
  for (auto& m : allMutants()) {
    if (m.name == name) return m;
  }
  return nullptr;
}

}  // namespace shoal::peer

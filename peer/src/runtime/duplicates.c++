#include <shoal/peer/runtime/duplicates.h>

#include <shoal/mutant.h>
namespace shoal::peer {

Keep resolveDuplicate(const PeerId& local, const PeerId& remote, const SessionFacts& existing,
                      const SessionFacts& incoming) {
  // A new instanceId is a restarted peer: its old session is dead weight.
  if (existing.instanceId != incoming.instanceId) {
    return isMutant(Mutant::duplicateKeepsOld) ? Keep::existing : Keep::incoming;
  }
  auto initiator = [&](const SessionFacts& s) -> const PeerId& {
    return s.role == Role::initiator ? local : remote;
  };
  const PeerId& a = initiator(existing);
  const PeerId& b = initiator(incoming);
  if (a != b) return b < a ? Keep::incoming : Keep::existing;
  if (isMutant(Mutant::duplicateKeepsOld)) return Keep::existing;
  return Keep::incoming;  // same initiator: the newer session
}

}  // namespace shoal::peer

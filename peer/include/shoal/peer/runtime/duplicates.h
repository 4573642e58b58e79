// The duplicate-session rule ([HS-17], [HS-18]): when two established sessions connect the same
// pair of peers, both sides must keep the same one without talking about it.
#pragma once

#include <shoal/peer/session/session-core.h>

namespace shoal::peer {

struct SessionFacts {
  Role role;            // our role in that session
  uint64_t instanceId;  // the remote peer's instanceId in that session
};

enum class Keep : uint8_t { existing, incoming };

// Which of two established sessions with peer `remote` survives. `incoming` completed its
// handshake after `existing`.
Keep resolveDuplicate(const PeerId& local, const PeerId& remote, const SessionFacts& existing,
                      const SessionFacts& incoming);

}  // namespace shoal::peer

#include <shoal/mutant.h>

#include <kj/debug.h>

namespace shoal {

#if SHOAL_MUTANTS

namespace mutant_detail {
Mutant active = Mutant::none;
}  // namespace mutant_detail

namespace {

// Names are stable: the committed mutation matrix (conformance/mutation-matrix.json) uses them.
const MutantInfo kMutants[] = {
    {Mutant::noTlsAlert, "no-tls-alert", "transport", "TR-2,TR-3,TR-4",
     "refuses a TLS handshake without the alert of section 2.6"},
    {Mutant::alpnOptional, "alpn-optional", "transport", "TR-4",
     "lets a TLS peer in without ALPN shoal/1"},
    {Mutant::noCloseNotify, "no-close-notify", "transport", "TR-12",
     "closes with FIN but no TLS close_notify"},
    {Mutant::trustAnyone, "trust-anyone", "transport", "TR-9,TR-10",
     "pinned mode admits every peer"},
    {Mutant::lenientIdParser, "lenient-id-parser", "transport", "TR-8",
     "accepts a peer id text whose check characters are wrong"},
    {Mutant::skipHelloIdCheck, "skip-hello-id-check", "handshake", "HS-8,HS-10",
     "believes the peerId of a Hello or HelloAck without comparing it with the TLS key"},
    {Mutant::ackHighestVersion, "ack-highest-version", "handshake", "HS-14,HS-15",
     "answers with the Hello's highest version, not the highest common one"},
    {Mutant::ackUnofferedFeature, "ack-unoffered-feature", "handshake", "FR-18",
     "puts a feature the Hello did not offer into HelloAck"},
    {Mutant::noHandshakeTimeout, "no-handshake-timeout", "handshake", "HS-6",
     "waits for a Hello forever"},
    {Mutant::secondHelloIgnored, "second-hello-ignored", "handshake", "HS-5,TR-1",
     "ignores a Hello or HelloAck after the handshake"},
    {Mutant::talksFirst, "talks-first", "handshake", "HS-1,HS-2",
     "the responder sends a Ping before the Hello arrived"},
    {Mutant::instancePerSession, "instance-per-session", "handshake", "HS-16",
     "announces another instanceId in every session"},
    {Mutant::wrongVersionRange, "wrong-version-range", "handshake", "HS-13,HS-15",
     "its Hello and Reject name versions it does not speak"},
    {Mutant::duplicateKeepsOld, "duplicate-keeps-old", "handshake", "HS-17,HS-18",
     "keeps the older of two sessions with one peer"},
    {Mutant::ignoreBadFrames, "ignore-bad-frames", "framing",
     "FR-3,FR-4,FR-10,FR-11,FR-12,FR-13,FR-14,HS-7",
     "drops an undecodable frame silently instead of Error{0, protocol}"},
    {Mutant::frameLimitSlack, "frame-limit-slack", "framing", "FR-5,FR-9",
     "reads frames up to twice the size it announced"},
    {Mutant::segmentsUnbounded, "segments-unbounded", "framing", "FR-4",
     "reads frames of up to 512 segments"},
    {Mutant::busyThenClose, "busy-then-close", "requests", "RQ-15",
     "closes the connection after answering busy"},
    {Mutant::answerTwice, "answer-twice", "requests", "RQ-4",
     "follows every terminal answer with a second one"},
    {Mutant::wrongAnswerId, "wrong-answer-id", "requests", "RQ-4",
     "answers with the request's id + 1"},
    {Mutant::acceptReusedId, "accept-reused-id", "requests", "RQ-3",
     "serves a request whose id is not above the last one"},
    {Mutant::ownIdsRepeat, "own-ids-repeat", "requests", "RQ-2",
     "gives all its own requests the id 1"},
    {Mutant::cancelUnknownFatal, "cancel-unknown-fatal", "requests", "RQ-17",
     "ends the session on a Cancel of an unknown id"},
    {Mutant::unknownAnswerIgnored, "unknown-answer-ignored", "requests", "RQ-11",
     "ignores an answer to an id it never sent"},
    {Mutant::pagesUnchecked, "pages-unchecked", "requests", "RQ-6,RQ-13",
     "accepts answer pages in any order, of any kind, with changing summaries"},
    {Mutant::requestErrorFatal, "request-error-fatal", "errors", "RQ-7,ERR-4",
     "ends the session when a request fails"},
    {Mutant::lateAnswerFatal, "late-answer-fatal", "requests", "RQ-12",
     "ends the session on a late answer to a finished request"},
    {Mutant::pagingSkipsPage, "paging-skips-page", "library", "RQ-5,LIB-9",
     "numbers library pages 0, 2, 3, ..."},
    {Mutant::revSkips, "rev-skips", "library", "LIB-6", "moves rev by 2 for each change"},
    {Mutant::snapshotWhenCurrent, "snapshot-when-current", "library", "LIB-8",
     "answers GetLibrary with a snapshot even when a delta is due"},
    {Mutant::deltaMissesUpserts, "delta-misses-upserts", "library", "LIB-10",
     "leaves added and changed items out of deltas"},
    {Mutant::listsDotFolders, "lists-dot-folders", "library", "LIB-1",
     "lists dot-folders as items"},
    {Mutant::noLibraryChanged, "no-library-changed", "library", "LIB-15",
     "never sends LibraryChanged"},
    {Mutant::wrongChunkHash, "wrong-chunk-hash", "manifests", "MAN-20",
     "hashes each chunk without its last byte"},
    {Mutant::unknownItemUnavailable, "unknown-item-unavailable", "manifests", "MAN-2,CHK-1",
     "answers unavailable instead of notFound for an unknown item"},
    {Mutant::corruptChunks, "corrupt-chunks", "chunks", "CHK-2",
     "flips one byte of every Chunk it serves"},
    {Mutant::staleUnchecked, "stale-unchecked", "chunks", "CHK-1",
     "serves chunks for any manifest digest"},
    {Mutant::rangeUnchecked, "range-unchecked", "chunks", "CHK-1",
     "does not check a range against the file's size"},
    {Mutant::noPong, "no-pong", "liveness", "LIV-2", "never answers Ping"},
    {Mutant::noDeadTimeout, "no-dead-timeout", "liveness", "LIV-4",
     "never closes a silent connection"},
    {Mutant::doublePing, "double-ping", "liveness", "LIV-7", "sends two Pings per silence"},
    {Mutant::unmatchedPongFatal, "unmatched-pong-fatal", "liveness", "LIV-5",
     "ends the session on a Pong"},
    {Mutant::cancelNotAlive, "cancel-not-alive", "liveness", "LIV-3",
     "does not count Cancel as a sign of life"},
    {Mutant::forgetGoodbye, "forget-goodbye", "goodbye", "BYE-11,BYE-6",
     "closes without Goodbye when it stops"},
    {Mutant::goodbyeLastIdHigh, "goodbye-last-id-high", "goodbye", "BYE-2",
     "its Goodbye names a lastRequestId above every request it got"},
    {Mutant::goodbyeClosesAtOnce, "goodbye-closes-at-once", "goodbye", "BYE-12,BYE-4",
     "closes at once on Goodbye, leaving requests unanswered"},
    {Mutant::secondGoodbyeFatal, "second-goodbye-fatal", "goodbye", "BYE-10",
     "ends the session on a second Goodbye"},
    {Mutant::noDrainDeadline, "no-drain-deadline", "goodbye", "BYE-9",
     "waits for a Goodbye drain forever"},
    {Mutant::talksAfterError, "talks-after-error", "errors", "ERR-2",
     "sends a Ping after Error{0}"},
    {Mutant::errorCodeOutsideTable, "error-code-outside-table", "errors", "ERR-1",
     "answers failed requests with an Error code outside Table 5"},
    {Mutant::errorNotFatal, "error-not-fatal", "errors", "ERR-3,HS-3,HS-4,HS-7",
     "carries on after an Error{0}"},
    {Mutant::tls12Allowed, "tls12-allowed", "transport", "TR-2", "negotiates TLS 1.2"},
    {Mutant::wrongOwnId, "wrong-own-id", "transport", "TR-6",
     "its Hello and HelloAck carry a peerId one bit off its TLS key's"},
    {Mutant::controlIdHex, "control-id-hex", "transport", "TR-7",
     "shows its id in hex, not in the text form"},
    {Mutant::idParserCaseSensitive, "id-parser-case-sensitive", "transport", "TR-8",
     "refuses peer id text in lower case"},
    {Mutant::pinnedRejectsAll, "pinned-rejects-all", "transport", "TR-9",
     "pinned mode admits nobody, not even listed peers"},
    {Mutant::announcesSmallFrames, "announces-small-frames", "framing", "FR-6",
     "announces maxFrameBytes 65535"},
    {Mutant::chunkLimitAboveFrames, "chunk-limit-above-frames", "framing", "FR-19",
     "announces a maxChunkBytes its own frames cannot carry"},
    {Mutant::unknownCodeFatal, "unknown-code-fatal", "framing", "FR-17",
     "ends the session on an unknown Error code or Goodbye reason"},
    {Mutant::helloAckVersionUnchecked, "helloack-version-unchecked", "handshake", "HS-10",
     "accepts any version a HelloAck chooses"},
    {Mutant::noMaxConnections, "no-max-connections", "handshake", "HS-11",
     "admits sessions beyond maxConnections"},
    {Mutant::noIdlePing, "no-idle-ping", "liveness", "LIV-1", "never pings an idle session"},
    {Mutant::noPongDraining, "no-pong-draining", "liveness", "LIV-6",
     "stops answering Ping once a Goodbye drain began"},
    {Mutant::viewTrustsDigest, "view-trusts-digest", "library", "LIB-14",
     "keeps a library answer whose items do not match its digest"},
    {Mutant::viewAppliesAnyDelta, "view-applies-any-delta", "library", "LIB-13",
     "applies a delta that removes an item it does not hold or names one item in both lists"},
    {Mutant::epochZero, "epoch-zero", "library", "LIB-5", "announces library epoch 0"},
    {Mutant::skipsChunkCheck, "skips-chunk-check", "chunks", "CHK-7",
     "writes a downloaded chunk without comparing its SHA-256 with the manifest"},
    {Mutant::noStrikes, "no-strikes", "chunks", "CHK-8",
     "never drops a download source for its bad chunks"},
    {Mutant::wrongLengthForgiven, "wrong-length-forgiven", "chunks", "CHK-6",
     "takes a Chunk of the wrong length for a failed answer, not a bad chunk"},
    {Mutant::ignoresSourceChunkLimit, "ignores-source-chunk-limit", "chunks", "CHK-4",
     "asks a source for whole chunks above the maxChunkBytes it announced"},
    {Mutant::renameEarly, "rename-early", "chunks", "CHK-9,CHK-11,LIB-4",
     "moves a download into the library as soon as one chunk is written"},
    {Mutant::trustsResume, "trusts-resume", "chunks", "CHK-10",
     "counts an earlier run's chunks as done although their read-back check failed"},
    {Mutant::downloadingNotFound, "downloading-not-found", "manifests", "MAN-3",
     "answers notFound, not unavailable, for an item it is downloading"},
    {Mutant::cancelledAnswerFatal, "cancelled-answer-fatal", "requests", "RQ-19",
     "ends the session when a request it cancelled is answered with anything but cancelled"},
    {Mutant::answersInOrder, "answers-in-order", "requests", "RQ-10",
     "ends the session on an answer to any but its oldest outstanding request"},
    {Mutant::discoverByDefault, "discover-by-default", "discovery", "DSC-1",
     "announces itself on every interface without --discover"},
    {Mutant::beaconTtlTwo, "beacon-ttl-two", "discovery", "DSC-2",
     "sends its Announce datagrams with TTL 2"},
    {Mutant::announceTrailingByte, "announce-trailing-byte", "discovery", "DSC-4",
     "puts a byte after the Announce frame in each datagram"},
    {Mutant::announceWrongPort, "announce-wrong-port", "discovery", "DSC-6",
     "announces its TCP port + 1"},
    {Mutant::discoveryAnyInterface, "discovery-any-interface", "discovery", "DSC-3",
     "announces on every interface, not only those it was given"},
    {Mutant::answersAnnounce, "answers-announce", "discovery", "DSC-9",
     "sends its own Announce at once on hearing one"},
    {Mutant::noTlsDeadline, "no-tls-deadline", "handshake", "HS-6",
     "gives the TLS handshake no deadline (only the admission's first-bytes cut remains)"},
    {Mutant::neverAsksDelta, "never-asks-delta", "library", "LIB-16",
     "asks every GetLibrary since {0, 0}, never since the view it holds"},
    {Mutant::keepsRequestsAboveLast, "keeps-requests-above-last", "goodbye", "BYE-8",
     "keeps waiting for its requests above a Goodbye's lastRequestId until the drain deadline"},
    {Mutant::ignoresRetryAfter, "ignores-retry-after", "errors", "ERR-5",
     "retries a busy or unavailable GetLibrary after 100 ms, whatever retryAfterMs says"},
    {Mutant::viewShowsPartial, "view-shows-partial", "library", "LIB-12",
     "shows a snapshot's items before its last page arrived"},
    {Mutant::sendsTickets, "sends-tickets", "transport", "TR-5",
     "as a TLS server, sends NewSessionTicket"},
    {Mutant::ignoresReject, "ignores-reject", "handshake", "HS-4,HS-7",
     "as an initiator, ignores a Reject and waits for its handshake deadline"},
    {Mutant::asksBeforeHelloAck, "asks-before-helloack", "requests", "RQ-1",
     "as an initiator, sends a GetLibrary right behind its Hello"},
    {Mutant::cancelWrongCode, "cancel-wrong-code", "requests", "RQ-16",
     "answers a Cancel of a request in progress with Error{internal}, not cancelled"},
    {Mutant::handshakesWhileStopping, "handshakes-while-stopping", "goodbye", "BYE-1",
     "once stopping, neither cuts connections in their handshake nor refuses their Hello"},
    {Mutant::datagramFirstFrame, "datagram-first-frame", "discovery", "DSC-7",
     "reads the first frame of a datagram and ignores the bytes after it"},
    {Mutant::datagramTruncationIgnored, "datagram-truncation-ignored", "discovery", "DSC-7",
     "reads the first 1200 bytes of a longer datagram as if they were all of it"},
    {Mutant::dialsOwnAnnounce, "dials-own-announce", "discovery", "DSC-7",
     "does not drop an Announce that carries its own peerId"},
    {Mutant::dialsDatagramPort, "dials-datagram-port", "discovery", "DSC-8",
     "dials an Announce's UDP source port instead of the announced port"},
    {Mutant::trustsAnnouncedId, "trusts-announced-id", "discovery", "DSC-8",
     "takes the session a discovery dial opened as the announced peer's, whatever TLS proved"},
    {Mutant::readsAreFrames, "reads-are-frames", "framing", "FR-1",
     "takes each read for whole frames: drops what follows a read's first frame, and partial "
     "frames"},
    {Mutant::partialTableRefused, "partial-table-refused", "framing", "FR-1,FR-4",
     "refuses a frame whose segment table has not all arrived yet instead of waiting for the rest"},
    {Mutant::strictStructSizes, "strict-struct-sizes", "framing", "FR-16",
     "refuses a frame whose structs are larger than its schema (fields it does not know)"},
    {Mutant::bigHandshakeFrames, "big-handshake-frames", "framing", "FR-9",
     "reads frames before the handshake up to its post-handshake maxFrameBytes"},
    {Mutant::trustsManifestDigest, "trusts-manifest-digest", "manifests", "MAN-21",
     "keeps a manifest without recomputing its digest"},
    {Mutant::clientResumes, "client-resumes", "transport", "TR-5",
     "as a TLS client, keeps the last session ticket it got and offers it on its next connection"},
    {Mutant::pskRetryCrash, "psk-retry-crash", "transport", "TR-5",
     "dies on ClientHello with PSK, HelloRetryRequest, ClientHello without PSK (CVE-2025-6395)"},
    {Mutant::ownIdUnchecked, "own-id-unchecked", "handshake", "HS-9",
     "admits a Hello (or HelloAck) that claims its own peer id"},
    {Mutant::plaintextFallback, "plaintext-fallback", "transport", "TR-11",
     "as a TLS responder, speaks plaintext to a connection whose first byte starts no TLS record"},
    {Mutant::anyKeyType, "any-key-type", "transport", "TR-3",
     "offers every signature algorithm and takes a raw key of any type, not only Ed25519"},
    {Mutant::lostRequestsKept, "lost-requests-kept", "errors", "ERR-8",
     "keeps a download's requests on a lost connection outstanding: ignores their local failure "
     "and does not withdraw them when the source goes"},
    {Mutant::lostSourceFailsItem, "lost-source-fails-item", "errors", "ERR-9",
     "fails the download when a source's connection ends with chunk requests outstanding instead "
     "of asking the sources it has left"},
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

}  // namespace shoal

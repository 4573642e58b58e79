// Mutants: deliberate defects of the reference peer, for the conformance suite's self-test
// (docs/conformance.md, "The mutation self-test"). A test build (CMake option SHOAL_MUTANTS, on in
// the asan, debug and coverage presets) lets `shoal serve --mutant NAME` switch exactly one on,
// and the code at the defect's site asks `if (isMutant(Mutant::x))`. In a release build
// isMutant() is a constant false: the branches still compile (and stay type-checked) but vanish,
// and the binary knows no mutant names.
//
// The registry sits below every layer (target shoal-mutant, linked by the codec and the peer) so
// that a defect can live in the codec too, e.g. in FrameDecoder or ManifestAssembler. That does
// not blind the conformance harness, which links the same codec: a mutant is switched on only in
// the process that ran `shoal serve --mutant NAME`, the target; everywhere else, the harness and
// the fuzzers included, no mutant is active and every hook is a no-op.
#pragma once

#include <stdint.h>

#include <kj/array.h>
#include <kj/string.h>

#ifndef SHOAL_MUTANTS
#error "SHOAL_MUTANTS must be defined (0 or 1): link the shoal-mutant target"
#endif

namespace shoal {

// One enumerator per defect; its name, area and description are in mutant.c++.
enum class Mutant : uint16_t {
  none,
  noTlsAlert,
  alpnOptional,
  noCloseNotify,
  trustAnyone,
  lenientIdParser,
  skipHelloIdCheck,
  ackHighestVersion,
  ackUnofferedFeature,
  noHandshakeTimeout,
  secondHelloIgnored,
  talksFirst,
  instancePerSession,
  wrongVersionRange,
  duplicateKeepsOld,
  ignoreBadFrames,
  frameLimitSlack,
  segmentsUnbounded,
  busyThenClose,
  answerTwice,
  wrongAnswerId,
  acceptReusedId,
  ownIdsRepeat,
  cancelUnknownFatal,
  unknownAnswerIgnored,
  pagesUnchecked,
  requestErrorFatal,
  lateAnswerFatal,
  pagingSkipsPage,
  revSkips,
  snapshotWhenCurrent,
  deltaMissesUpserts,
  listsDotFolders,
  noLibraryChanged,
  wrongChunkHash,
  unknownItemUnavailable,
  corruptChunks,
  staleUnchecked,
  rangeUnchecked,
  noPong,
  noDeadTimeout,
  doublePing,
  unmatchedPongFatal,
  cancelNotAlive,
  forgetGoodbye,
  goodbyeLastIdHigh,
  goodbyeClosesAtOnce,
  secondGoodbyeFatal,
  noDrainDeadline,
  talksAfterError,
  errorCodeOutsideTable,
  errorNotFatal,
  tls12Allowed,
  wrongOwnId,
  controlIdHex,
  idParserCaseSensitive,
  pinnedRejectsAll,
  announcesSmallFrames,
  chunkLimitAboveFrames,
  unknownCodeFatal,
  helloAckVersionUnchecked,
  noMaxConnections,
  noIdlePing,
  noPongDraining,
  viewTrustsDigest,
  viewAppliesAnyDelta,
  epochZero,
  skipsChunkCheck,
  noStrikes,
  wrongLengthForgiven,
  ignoresSourceChunkLimit,
  renameEarly,
  trustsResume,
  downloadingNotFound,
  cancelledAnswerFatal,
  answersInOrder,
  discoverByDefault,
  beaconTtlTwo,
  announceTrailingByte,
  announceWrongPort,
  discoveryAnyInterface,
  answersAnnounce,
  noTlsDeadline,
  neverAsksDelta,
  keepsRequestsAboveLast,
  ignoresRetryAfter,
  viewShowsPartial,
  sendsTickets,
  ignoresReject,
  asksBeforeHelloAck,
  cancelWrongCode,
  handshakesWhileStopping,
  datagramFirstFrame,
  datagramTruncationIgnored,
  dialsOwnAnnounce,
  dialsDatagramPort,
  trustsAnnouncedId,
  readsAreFrames,
  partialTableRefused,
  strictStructSizes,
  bigHandshakeFrames,
  trustsManifestDigest,
  clientResumes,
  pskRetryCrash,
  ownIdUnchecked,
  plaintextFallback,
  anyKeyType,
  lostRequestsKept,
  lostSourceFailsItem,
};

struct MutantInfo {
  Mutant mutant;
  kj::StringPtr name;          // what `--mutant` takes: "corrupt-chunks"
  kj::StringPtr area;          // the docs/protocol.md area it breaks: "chunks"
  kj::StringPtr requirements;  // the ids it violates, comma-separated: "CHK-2,CHK-3"
  kj::StringPtr breaks;        // what it does, in a line
};

constexpr bool kMutantsBuilt = SHOAL_MUTANTS;

// Every mutant of this build, in a stable order; empty when mutants are not built.
kj::ArrayPtr<const MutantInfo> allMutants();
kj::Maybe<const MutantInfo&> findMutant(kj::StringPtr name);

#if SHOAL_MUTANTS
namespace mutant_detail {
// Written once by activateMutant() before any thread starts, read-only afterwards.
extern Mutant active;
}  // namespace mutant_detail
inline bool isMutant(Mutant m) {
  return mutant_detail::active == m;
}
#else
constexpr bool isMutant(Mutant) {
  return false;
}
#endif

// Switches `m` on for the rest of the process. Call once, before starting any thread. A build
// without mutants takes only Mutant::none.
void activateMutant(Mutant m);
Mutant activeMutant();

}  // namespace shoal

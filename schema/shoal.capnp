# shoal wire protocol, version 1. docs/protocol.md is normative; this file is its machine form.
#
# Evolution rules (docs/protocol.md, "Schema evolution"):
# - Fields and union members are only ever added, with the next free ordinal. Ordinals, names'
#   meaning and types never change; nothing is removed (retire a field by documenting it unused).
# - A new union member is a new message kind: a peer that does not know it answers Error{protocol}
#   (connection-level) unless a feature negotiated in the handshake says the other side may send it.
# - Unknown enum values of Error.code, Reject.code and Goodbye.reason are accepted and read as
#   `internal` / `other` (docs/protocol.md [FR-17]); those enums may grow without a new version.
# - Every message travels as exactly one Cap'n Proto message (standard stream framing, unpacked)
#   whose root is `Frame`.

@0x8da4db48cc431b21;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shoal::wire");

const protocolVersion :UInt16 = 1;
# The only version this schema describes. Hello carries a range so later versions can negotiate.

const digestBytes :UInt32 = 32;
# Every digest and peer id on the wire is a SHA-256 value of exactly this many bytes.

const alpn :Text = "shoal/1";
# TLS ALPN protocol name.

enum ErrorCode {
  # Typed reason of an Error or Reject. Requesters branch on the code, never on the message text.
  protocol @0;            # the peer broke the protocol (bad frame, bad field, wrong state)
  unsupportedVersion @1;  # no common protocol version
  untrusted @2;           # the peer's identity is not accepted (pinned mode, id spoof)
  notFound @3;            # no such item or file
  unavailable @4;         # the item exists but cannot be served now (e.g. still downloading)
  range @5;               # offset/length outside the file, or length above the limit
  stale @6;               # the manifest digest asked for is no longer the current one
  busy @7;                # too many requests in flight; retry after retryAfterMs
  tooLarge @8;            # a frame or an answer would exceed a limit
  cancelled @9;           # the request was cancelled by the requester
  shuttingDown @10;       # the peer is leaving (request above Goodbye.lastRequestId, or new session)
  internal @11;           # the responder failed on its own side (I/O error, bug)
}

struct LibrarySummary {
  # Names one exact state of a peer's library.
  epoch @0 :UInt64;  # random, non-zero; changes whenever the revision history is reset
  rev @1 :UInt64;    # revision within the epoch; grows by one per published change, starts at 1
  digest @2 :Data;   # SHA-256 of the item list (protocol.md "Library digest"), 32 bytes
}

struct PeerLimits {
  # What the sender of a Hello/HelloAck accepts; the other side MUST stay within it.
  maxFrameBytes @0 :UInt32;  # largest frame (segment table included) the sender will read
  maxInFlight @1 :UInt32;    # requests the sender will have outstanding from the other side
  maxChunkBytes @2 :UInt32;  # largest GetChunk.length the sender will answer
}

struct Hello {
  # First frame of a connection, sent by the initiator (the side that opened the TCP connection).
  versionMin @0 :UInt16;         # lowest protocol version the sender speaks (>= 1)
  versionMax @1 :UInt16;         # highest protocol version the sender speaks (>= versionMin)
  peerId @2 :Data;               # SHA-256 of the sender's TLS SubjectPublicKeyInfo, 32 bytes
  name @3 :Text;                 # human-readable peer name, UTF-8, display only
  features @4 :List(Text);       # optional features the sender supports (ASCII tokens)
  library @5 :LibrarySummary;    # the sender's library as of the handshake
  limits @6 :PeerLimits;         # what the sender accepts
  instanceId @7 :UInt64;         # random per process start, non-zero; tells restarts apart
}

struct HelloAck {
  # The responder's acceptance of a Hello.
  version @0 :UInt16;            # the version chosen: the highest one both ranges contain
  peerId @1 :Data;               # the responder's id, 32 bytes
  name @2 :Text;                 # display name
  features @3 :List(Text);       # intersection of both feature sets
  library @4 :LibrarySummary;    # the responder's library as of the handshake
  limits @5 :PeerLimits;         # what the responder accepts
  instanceId @6 :UInt64;         # random per process start, non-zero
}

struct Reject {
  # The responder's refusal of a Hello; the responder closes the connection right after it.
  code @0 :ErrorCode;            # unsupportedVersion, untrusted, shuttingDown, busy or protocol
  message @1 :Text;              # human-readable detail
  versionMin @2 :UInt16;         # the responder's range, set when code = unsupportedVersion
  versionMax @3 :UInt16;
}

struct Error {
  # Terminal answer to a request that failed, or (id = 0) a connection-level error before close.
  id @0 :UInt64;                 # the request's id; 0 for a connection-level error
  code @1 :ErrorCode;
  message @2 :Text;              # human-readable detail, UTF-8
  retryAfterMs @3 :UInt32;       # with busy/unavailable: earliest sensible retry; 0 = unspecified
}

struct Cancel {
  # The requester no longer wants the answer to request `id`.
  id @0 :UInt64;
}

struct Ping {
  nonce @0 :UInt64;              # echoed by Pong
}

struct Pong {
  nonce @0 :UInt64;              # the nonce of the Ping being answered
}

struct GetLibrary {
  # Request: the responder's item list, as a delta since (sinceEpoch, sinceRev) when possible.
  id @0 :UInt64;
  sinceEpoch @1 :UInt64;         # epoch the requester holds; 0 = nothing held (wants a snapshot)
  sinceRev @2 :UInt64;           # revision the requester holds; 0 = nothing held
}

struct ItemEntry {
  # One item (a top-level folder of the library).
  itemId @0 :Text;               # the folder name: one valid path component, the item's key
  name @1 :Text;                 # display name, UTF-8
  size @2 :UInt64;               # sum of the item's file sizes in bytes
  fileCount @3 :UInt32;          # number of files in the manifest
  manifestDigest @4 :Data;       # digest of the item's current manifest, 32 bytes
}

struct LibrarySnapshot {
  # One page of a full item list. Pages of one answer share id and summary; page counts from 0;
  # the page with last = true is the terminal answer.
  id @0 :UInt64;                 # the GetLibrary's id
  summary @1 :LibrarySummary;    # the state the whole snapshot describes
  page @2 :UInt32;
  last @3 :Bool;
  items @4 :List(ItemEntry);     # sorted by itemId (bytewise), ascending across all pages
}

struct LibraryDelta {
  # One page of the changes from (summary.epoch, fromRev) to summary. Same paging as a snapshot.
  id @0 :UInt64;                 # the GetLibrary's id
  fromRev @1 :UInt64;            # the revision the delta applies to (= GetLibrary.sinceRev)
  summary @2 :LibrarySummary;    # the state after applying every page
  page @3 :UInt32;
  last @4 :Bool;
  upserts @5 :List(ItemEntry);   # items added or changed
  removals @6 :List(Text);       # itemIds removed
}

struct LibraryChanged {
  # Notification (no id, no answer): the sender's library moved to `summary`.
  summary @0 :LibrarySummary;
}

struct GetManifest {
  # Request: the current manifest of one item.
  id @0 :UInt64;
  itemId @1 :Text;
}

struct FileEntry {
  path @0 :Text;                 # relative to the item folder; protocol.md "Paths"
  size @1 :UInt64;               # bytes
  mode @2 :UInt32;               # permission bits, a subset of 0o777
}

struct Manifest {
  # One page of an item's manifest. File entries and chunk hashes are paged independently:
  # files[i] is file (firstFile + i); hashes holds the SHA-256 of chunks firstChunk,
  # firstChunk + 1, ... in manifest chunk order (file 0's chunks, then file 1's, ...).
  id @0 :UInt64;                 # the GetManifest's id
  itemId @1 :Text;
  digest @2 :Data;               # manifest digest, 32 bytes, the same on every page
  chunkSize @3 :UInt32;          # every chunk but a file's last is exactly this long
  fileCount @4 :UInt32;          # files in the whole manifest
  chunkCount @5 :UInt64;         # chunks in the whole manifest
  totalBytes @6 :UInt64;         # sum of file sizes
  page @7 :UInt32;
  last @8 :Bool;
  firstFile @9 :UInt32;
  files @10 :List(FileEntry);
  firstChunk @11 :UInt64;
  hashes @12 :Data;              # concatenated 32-byte chunk digests
}

struct GetChunk {
  # Request: `length` bytes of one file of one item, starting at `offset`.
  id @0 :UInt64;
  itemId @1 :Text;
  manifestDigest @2 :Data;       # the manifest the requester works from; stale if not current
  fileIndex @3 :UInt32;          # index into that manifest's files
  offset @4 :UInt64;
  length @5 :UInt32;             # 1 .. the responder's maxChunkBytes
}

struct Chunk {
  # Terminal answer to GetChunk: exactly the bytes asked for.
  id @0 :UInt64;
  data @1 :Data;
}

enum GoodbyeReason {
  shutdown @0;                   # the sender is stopping
  duplicate @1;                  # this connection lost the duplicate-connection rule
  idle @2;                       # the sender no longer needs the connection
  other @3;
}

struct Goodbye {
  # The sender is closing: it sends no new requests and answers the receiver's requests up to
  # and including lastRequestId, then closes.
  reason @0 :GoodbyeReason;
  message @1 :Text;
  lastRequestId @2 :UInt64;      # highest request id of the receiver's the sender will answer
}

struct Announce {
  # Discovery beacon: one UDP datagram = one Frame holding only this. Proves nothing by itself.
  peerId @0 :Data;               # 32 bytes
  instanceId @1 :UInt64;
  port @2 :UInt16;               # TCP port the peer accepts connections on
  name @3 :Text;
  versionMin @4 :UInt16;
  versionMax @5 :UInt16;
  summary @6 :LibrarySummary;
}

struct Frame {
  # Root of every frame on a connection and of every discovery datagram.
  union {
    hello @0 :Hello;
    helloAck @1 :HelloAck;
    reject @2 :Reject;
    error @3 :Error;
    cancel @4 :Cancel;
    ping @5 :Ping;
    pong @6 :Pong;
    getLibrary @7 :GetLibrary;
    librarySnapshot @8 :LibrarySnapshot;
    libraryDelta @9 :LibraryDelta;
    libraryChanged @10 :LibraryChanged;
    getManifest @11 :GetManifest;
    manifest @12 :Manifest;
    getChunk @13 :GetChunk;
    chunk @14 :Chunk;
    goodbye @15 :Goodbye;
    announce @16 :Announce;
  }
}

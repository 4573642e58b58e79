# Local control API of the reference peer: Cap'n Proto RPC over a Unix socket in the state folder
# (mode 0600). `shoal ls | peers | status | stop | get | cancel` and the conformance runner are its clients. Events
# are also what `shoal serve --json` prints, one JSON object per line (capnp::JsonCodec).
# Local only: Cap'n Proto RPC is not hardened against resource exhaustion (docs/dependencies.md).

@0xe1ad66e878a4dfa6;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shoal::control");
using Json = import "/capnp/compat/json.capnp";

struct Summary {
  epoch @0 :UInt64;
  rev @1 :UInt64;
  digest @2 :Text;        # hex
}

enum Direction {
  inbound @0;             # the peer dialled us
  outbound @1;            # we dialled the peer
}

enum FoundBy {
  incoming @0;            # it dialled us, and no discovery of ours has heard of it
  static @1;              # a --peer address
  beacon @2;              # the LAN beacon (docs/protocol.md §12)
  mdns @3;                # DNS-SD over mDNS (_shoal._tcp)
}

enum PeerState {
  established @0;
  leaving @1;             # the peer said Goodbye; answers in flight are still read
}

struct PeerInfo {
  peerId @0 :Text;        # text form (docs/protocol.md §2.2)
  name @1 :Text;
  address @2 :Text;       # remote host:port
  direction @3 :Direction;
  state @4 :PeerState;
  instanceId @5 :UInt64;
  library @6 :Summary;    # as last synchronised
  items @7 :UInt32;       # items in our view of its library
  authenticated @8 :Bool; # false only in plaintext mode
  bytesIn @9 :UInt64;
  bytesOut @10 :UInt64;
  foundBy @11 :FoundBy;   # how we came to know it: what we dialled it for, or what announced it
  foundMs @12 :UInt64;    # since when: milliseconds since the runtime started (as Event.timeMs)
}

struct RemoteItem {
  itemId @0 :Text;
  name @1 :Text;
  size @2 :UInt64;
  fileCount @3 :UInt32;
  manifestDigest @4 :Text;  # hex
  peers @5 :List(Text);     # ids of the peers that list this item (with this digest)
  local @6 :LocalState;     # what this peer has of it
  bytesDone @7 :UInt64;     # while downloading: verified bytes
}

enum LocalState {
  absent @0;                # not in our library, not downloading
  downloading @1;           # a download is under way (the item is not served meanwhile)
  inLibrary @2;             # an item with this id is in our library
}

struct DownloadInfo {
  itemId @0 :Text;
  state @1 :Text;           # loading | fetchingManifest | preparing | downloading | finishing | stopping
  bytesDone @2 :UInt64;
  bytesTotal @3 :UInt64;    # 0 until the manifest is known
  sourcesInUse @4 :UInt32;
}

struct SourceShare {
  peerId @0 :Text;
  bytes @1 :UInt64;         # verified chunk bytes received from it
}

enum DownloadStart {
  started @0;
  alreadyRunning @1;        # follow its events: the download under way is the one asked for
  inLibrary @2;             # an item with this id is already in the library
  stopping @3;              # the runtime is shutting down
  badId @4;                 # not an item id ([LIB-*] rules): message says why
}

struct ScanProgress {       # a library scan hashing what the index cache cannot vouch for
  walked @0 :Bool;          # every file found: the totals below are final
  filesHashed @1 :UInt64;
  filesToHash @2 :UInt64;
  bytesHashed @3 :UInt64;   # a file that changed while hashed counts again
  bytesToHash @4 :UInt64;
  bytesPerSecond @5 :UInt64;  # since the scan began
  etaMs @6 :UInt64;         # time left at that rate; 0 until known
  done @7 :Bool;            # the scan has ended: the last report of this scan
}

struct Status {
  peerId @0 :Text;
  name @1 :Text;
  listen @2 :Text;          # the bound address
  library @3 :Summary;
  items @4 :UInt32;
  bytes @5 :UInt64;
  peers @6 :UInt32;
  uptimeMs @7 :UInt64;
  trust @8 :Text;           # "open" | "pinned"
  plaintext @9 :Bool;
  libraryDir @10 :Text;
  handshakeFailures @11 :UInt64;  # inbound connections that ended before their session
  admissionDrops @12 :UInt64;     # of those: evicted, or silent past the first-bytes deadline
  leftOutPaths @13 :UInt32;       # paths the last scan left out (symlinks, FIFOs, unreadable...)
  handshakesPending @14 :UInt32;  # inbound connections accepted and not yet in a session
  downloads @15 :List(DownloadInfo);
  downloadTasks @16 :UInt32;      # promises the download service owns (0 when none runs)
  scanning @17 :Bool;             # a library scan is running; `scan` says how far
  scan @18 :ScanProgress;
}

struct Event {
  timeMs @0 :UInt64;        # milliseconds since the runtime started
  union {
    peerFound @1 :PeerInfo;
    peerLost :group {
      peerId @2 :Text;
      reason @3 :Text;
    }
    libraryChanged :group {
      peerId @4 :Text;      # empty: our own library
      summary @5 :Summary;
      items @6 :UInt32;
    }
    runtimeFailed :group {
      component @7 :Text;
      error @8 :Text;
    }
    serviceRestarted :group {
      component @9 :Text;
      error @10 :Text;
      backoffMs @11 :UInt32;
    }
    stopped :group {
      clean @12 :Bool;      # everything drained and joined within the deadline
      elapsedMs @13 :UInt32;
      goodbyes @14 :UInt32; # sessions that were sent Goodbye
    }
    started :group {
      peerId @15 :Text;
      listen @16 :Text;
      items @17 :UInt32;
    }
    goodbyeReceived :group {
      peerId @18 :Text;
      reason @19 :Text;
      message @20 :Text;
    }
    dialFailed :group {     # a dial of a static peer ended before a session
      address @21 :Text;
      code @22 :Text;       # unresolvable | unreachable | tls | timeout | closed | self | unlisted ...
      message @23 :Text;
      retryMs @24 :UInt32;  # when it is dialled again; 0: never (a connection to ourselves)
    }
    peerRefused :group {    # a static peer refused our Hello (Reject) or ended the handshake (Error)
      address @25 :Text;
      code @26 :Text;       # the wire code (busy, untrusted, ...) or "error"
      message @27 :Text;    # the peer's own words
      retryMs @28 :UInt32;
    }
    handshakeFailed :group {  # an inbound connection ended before its session; rate limited
      address @29 :Text;
      stage @30 :Text;        # admission | tls | hello
      reason @31 :Text;
      suppressed @32 :UInt32; # failures since the previous handshakeFailed that were not reported
    }
    downloadStarted :group {
      itemId @33 :Text;
    }
    downloadManifest :group { # the manifest is known: what will be fetched
      itemId @34 :Text;
      totalBytes @35 :UInt64;
      chunks @36 :UInt64;
      files @37 :UInt32;
    }
    downloadProgress :group { # at most every 250 ms while chunks complete
      itemId @38 :Text;
      bytesDone @39 :UInt64;
      bytesTotal @40 :UInt64;
      sourcesInUse @41 :UInt32;
    }
    downloadBadChunk :group { # a source sent a chunk that failed verification; nothing written
      itemId @42 :Text;
      peerId @43 :Text;
      count @44 :UInt32;      # its bad chunks of this item in this session
    }
    downloadSourceDropped :group {
      itemId @45 :Text;
      peerId @46 :Text;
      reason @47 :Text;       # badChunks | errors | badManifest | changed | tooSmall
      detail @48 :Text;
    }
    downloadAllPeersGone :group { # no source left: the download ends, its progress kept
      itemId @49 :Text;
    }
    downloadEnded :group {    # last, exactly once per download
      itemId @50 :Text;
      outcome @51 :Text;      # finished | failed | cancelled | stopped | allPeersGone
      message @52 :Text;      # what failed (path and errno text), for failed
      bytesDone @53 :UInt64;
      bytesTotal @54 :UInt64;
      sources @55 :List(SourceShare);
    }
    scanProgress @56 :ScanProgress;  # while a scan hashes (every scanProgressInterval), then done
  }
}

interface EventSink {
  push @0 (event :Event) -> stream;
  done @1 ();               # the runtime stopped: no more events
}

interface Control {
  status @0 () -> (status :Status);
  peers @1 () -> (peers :List(PeerInfo));
  items @2 () -> (items :List(RemoteItem));  # remote items, merged across peers
  # Starts the clean shutdown and returns. The reference peer writes this answer before it closes
  # the connection, subscribed or not; a client of another implementation should take a closed
  # connection here as the shutdown under way too.
  stop @3 () -> ();
  subscribe @4 (sink :EventSink) -> ();      # events until the runtime stops
  rescan @5 () -> (changed :Bool);           # rescans the library now
  # Starts downloading an item from every peer that lists it; events say how it goes. Subscribe
  # first to see every event of it.
  download @6 (itemId :Text) -> (result :DownloadStart, message :Text);
  # Stops a download between chunks; its progress is kept for the next `download`.
  cancel @7 (itemId :Text) -> (cancelled :Bool);
}

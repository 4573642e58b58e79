// Target `download`: DownloadCore driven by arbitrary peer behaviour — answers, errors, lies,
// disconnects, late and duplicate answers, answers after Cancel, any order — with a real
// PartialItem on a scratch folder as its disk, and restarts that resume from what is on disk
// (sometimes after a byte of a kept chunk was flipped). Virtual time; no threads.
//
// Input (at most 8 KiB; reads past the end give 0): byte 0 picks the item's file count (bits 0-1)
// and a limits preset (bits 2-7); then one byte per file for its size; then ops until the input
// ends, each one byte (op = b & 15, param = b >> 4) plus its own bytes:
//   0 add a source (param: maxInFlight, which version it lists)    1 remove a source (u8 which)
//   2 a source lists another version (u8 which)                     3 answer a request (u8 which)
//   4 a late answer: a ticket already answered or cancelled (u8)    5 the disk does a job (u8)
//   6 the disk fails a job (u8)                                     7 the disk drops a job (u8)
//   8 time passes (param)                                          9 cancel / shutdown
//   10 restart from the disk (param bit 0: flip a byte of a kept chunk first)
//   11-15 the oldest request is answered honestly
// At the end every source still present answers honestly and the disk does every job, until the
// download ends — which it must.
//
// Invariants (KJ_ASSERT): requests only to sources present, not dropped, not struck out ([CHK-8]),
// past their retry-after ([ERR-5]), within their maxInFlight ([RQ-14]), for whole chunks of the
// manifest ([CHK-4], [CHK-5]) that are not written or being written; the buffered limits hold;
// onChunk() hands out a write only for a request outstanding, once per chunk; a chunk is written
// only with bytes that hash right — a write refused leaves the file's bytes as they were, a write
// accepted leaves exactly the right bytes ([CHK-7]); a check says intact exactly when the bytes on
// disk are right ([CHK-10]); saves claim only chunks verified or kept unchecked; Finish only once
// every chunk is verified; finished means the library holds exactly the item ([CHK-11]); every
// request ends (answered, or cancelled by the core) before Ended; one Ended, last, and nothing
// after it; at most one AllPeersGone, never with a failure.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kj/debug.h>
#include <shoal/codec/frame.h>
#include <shoal/peer/download/download-core.h>
#include <shoal/peer/download/partial-item.h>
#include <shoal/peer/library/beneath.h>

#include "targets/scratch-folder.h"

#include <map>
#include <set>
#include <vector>

#include "targets/fuzz-input.h"

using namespace shoal;
using namespace shoal::peer::download;
using shoal::fuzz::Input;
using wire::ErrorCode;

namespace {

constexpr uint32_t kChunk = 4096;
constexpr size_t kMaxInput = 8 * 1024;
constexpr int kMaxRestarts = 2;

// --- the item in two versions ------------------------------------------------------------------

struct Version {
  codec::Manifest manifest;
  kj::Array<kj::Array<kj::byte>> files;

  Version(kj::ArrayPtr<const uint64_t> sizes, uint8_t salt) {
    kj::Vector<codec::FileInfo> infos;
    kj::Vector<codec::Digest> chunks;
    auto builder = kj::heapArrayBuilder<kj::Array<kj::byte>>(sizes.size());
    for (uint32_t f = 0; f < sizes.size(); ++f) {
      infos.add(codec::FileInfo{kj::str("d", f / 2, "/f", f), sizes[f], 0640});
      auto content = kj::heapArray<kj::byte>(sizes[f]);
      // Never a zero byte: a region of zeros is a region never written.
      for (uint64_t i = 0; i < sizes[f]; ++i)
        content[i] = kj::byte((i * 131 + f * 17 + (i >> 12) * 7 + salt) % 251 + 1);
      for (uint64_t off = 0; off < sizes[f]; off += kChunk)
        chunks.add(codec::sha256(content.slice(off, kj::min(off + kChunk, sizes[f]))));
      builder.add(kj::mv(content));
    }
    manifest = codec::makeManifest(kj::str("item"), kChunk, infos.releaseAsArray(),
                                   chunks.releaseAsArray());
    files = builder.finish();
  }

  kj::ArrayPtr<const kj::byte> bytes(uint32_t file, uint64_t offset, uint32_t length) const {
    return files[file].slice(offset, offset + length);
  }
};

// --- a fresh library per input, in a scratch folder per process (tmpfs when there is one) ------

kj::StringPtr scratchParent() {
  struct stat st;
  return stat("/dev/shm", &st) == 0 ? "/dev/shm"_kj : "/tmp"_kj;
}

kj::AutoCloseFd openDir(kj::StringPtr path) {
  int fd = open(path.cStr(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  KJ_ASSERT(fd >= 0, path, strerror(errno));
  return kj::AutoCloseFd(fd);
}

// --- the harness ---------------------------------------------------------------------------------

struct SourceModel {
  uint8_t version;  // 0, 1: lists that version; 2: lists nothing
  uint32_t maxInFlight;
  uint32_t bad = 0;  // bad chunks delivered (wrong length, or refused by the disk's check)
  bool dropped = false;
  kj::TimePoint notBefore = kj::origin<kj::TimePoint>();
};

struct SentRequest {
  SourceKey source;
  bool manifest;
  uint64_t chunk;
  uint32_t file;
  uint64_t offset;
  uint32_t length;
};

struct Job {
  enum class Kind { write, check, save, prepare, finish };
  explicit Job(Kind kind) : kind(kind) {}
  Kind kind;
  ChunkWrite where{};
  kj::Array<kj::byte> data;  // write: the bytes the source sent
  SourceKey from = 0;
  action::CheckChunk check{};
  ChunkSet chunks;  // save
};

class Harness {
 public:
  Harness(fuzz::ScratchFolder& scratch, kj::ArrayPtr<const uint64_t> sizes,
          const DownloadLimits& limits)
      : versions{Version(sizes, 0), Version(sizes, 1)},
        limits(limits),
        root(kj::str(scratch.path(), "/run")) {
    (void)peer::library::removeBeneath(AT_FDCWD, root);
    KJ_SYSCALL(mkdir(root.cStr(), 0700));
    libraryDir = kj::str(root, "/library");
    stateDir = kj::str(libraryDir, "/.shoal");
    KJ_SYSCALL(mkdir(libraryDir.cStr(), 0700));
    KJ_SYSCALL(mkdir(stateDir.cStr(), 0700));
    libraryFd = openDir(libraryDir);
    stateFd = openDir(stateDir);
    startCore();
  }
  ~Harness() noexcept(false) {
    partial = nullptr;  // before the core whose manifest it uses
    (void)peer::library::removeBeneath(AT_FDCWD, root);
  }

  void run(Input& in) {
    while (!in.done()) {
      uint8_t b = in.byte();
      uint8_t param = b >> 4;
      switch (b & 15) {
        case 0: addSource(param); break;
        case 1: removeSource(in.byte()); break;
        case 2: relist(in.byte()); break;
        case 3: answer(in.byte(), param); break;
        case 4: late(in.byte()); break;
        case 5: doJob(in.byte()); break;
        case 6: failJob(in.byte()); break;
        case 7: dropJob(in.byte()); break;
        case 8: advance(param); break;
        case 9: param % 2 == 0 ? core->cancel(now) : core->shutdown(now); break;
        case 10: restart(param & 1); break;
        default:
          if (!requests.empty()) answer(0, 0);
          break;
      }
      drain();
    }
    finishUp();
  }

 private:
  Version versions[2];
  DownloadLimits limits;
  kj::String root, libraryDir, stateDir;
  kj::AutoCloseFd libraryFd, stateFd;
  kj::TimePoint now = kj::origin<kj::TimePoint>() + 100 * kj::SECONDS;
  kj::Own<DownloadCore> core;
  kj::Maybe<kj::Own<PartialItem>> partial;
  int restarts = 0;

  std::map<SourceKey, SourceModel> sources;  // present now
  SourceKey nextKey = 1;
  std::map<Ticket, SentRequest> requests;  // sent, not answered by us, not cancelled by the core
  std::set<Ticket> over;                   // answered or cancelled
  std::vector<Job> jobs;
  bool stopWrites = false;
  bool ended = false;
  bool peersGone = false;
  std::set<uint64_t> verified;       // chunks written or checked intact in this run
  std::set<uint64_t> writing;        // writes handed out and not reported
  std::set<uint64_t> claimedAtLoad;  // what the disk claimed when this run started

  Folders folders() const { return Folders{stateFd, stateDir, libraryFd, libraryDir}; }
  const codec::Manifest& target() const { return core->manifest(); }
  const Version& versionOf(const codec::Digest& digest) const {
    return versions[digest == versions[0].manifest.digest ? 0 : 1];
  }

  void startCore() {
    core = kj::heap<DownloadCore>("item", limits, codec::Limits(), now);
    auto state = PartialItem::load(folders(), "item");
    claimedAtLoad.clear();
    for (auto c = state.claimed.next(0); c != nullptr;
         c = state.claimed.next(KJ_ASSERT_NONNULL(c) + 1))
      claimedAtLoad.insert(KJ_ASSERT_NONNULL(c));
    core->onLoaded(kj::mv(state.manifest), kj::mv(state.claimed), now);
    for (auto& [key, s] : sources)
      core->addSource(key, infoOf(key, s), now);
    drain();
  }

  SourceInfo infoOf(SourceKey key, const SourceModel& s) const {
    kj::Maybe<codec::Digest> listed;
    if (s.version < 2) listed = versions[s.version].manifest.digest;
    (void)key;
    // Strikes belong to the session, not to one download ([CHK-8]): a restart keeps them.
    return SourceInfo{peer::PeerId{}, s.maxInFlight, codec::kMaxChunkSize, listed, nullptr, s.bad};
  }

  // --- what the core asks for -------------------------------------------------------------------

  void drain() {
    auto actions = core->takeActions();
    auto events = core->takeEvents();
    if (ended) {
      KJ_ASSERT(actions.empty() && events.empty(), "output after Ended");
      return;
    }
    for (auto& a : actions)
      perform(a);
    for (auto& e : events)
      observe(e);
    checkBudget();
  }

  void checkBudget() {
    if (!core->hasManifest()) return;
    KJ_ASSERT(core->bufferedBytes() <= kj::max(limits.maxBufferedBytes, uint64_t(kChunk)),
              core->bufferedBytes());
    size_t chunkRequests = 0;
    std::map<SourceKey, uint32_t> perSource;
    for (auto& [t, r] : requests) {
      if (!r.manifest) ++chunkRequests;
      ++perSource[r.source];
    }
    KJ_ASSERT(chunkRequests + writing.size() <= kj::max(limits.maxBufferedChunks, 1u));
    for (auto& [key, n] : perSource) {
      auto it = sources.find(key);
      if (it == sources.end()) continue;  // removed: its requests are being let go
      KJ_ASSERT(n <= kj::min(it->second.maxInFlight, limits.maxWindow), n);
    }
  }

  void perform(Action& action) {
    KJ_SWITCH_ONEOF(action) {
      KJ_CASE_ONEOF(get, action::GetManifest) {
        checkSource(get.source);
        requests[get.ticket] = SentRequest{get.source, true, 0, 0, 0, 0};
      }
      KJ_CASE_ONEOF(get, action::GetChunk) {
        checkSource(get.source);
        KJ_ASSERT(now >= sources[get.source].notBefore, "asked before retry-after");
        auto& m = target();
        KJ_ASSERT(get.chunk < m.chunks.size() && get.file < m.files.size());
        uint64_t k = get.chunk - m.firstChunk[get.file];
        KJ_ASSERT(get.chunk >= m.firstChunk[get.file] && k < m.chunkRange(get.file).count);
        KJ_ASSERT(get.offset == k * kChunk && get.length == m.chunkLength(get.file, k));
        KJ_ASSERT(verified.count(get.chunk) == 0 && writing.count(get.chunk) == 0,
                  "a chunk written or being written asked for again", get.chunk);
        requests[get.ticket] =
            SentRequest{get.source, false, get.chunk, get.file, get.offset, get.length};
      }
      KJ_CASE_ONEOF(c, action::Cancel) {
        KJ_ASSERT(requests.erase(c.ticket) == 1, "Cancel of a request not outstanding");
        over.insert(c.ticket);
      }
      KJ_CASE_ONEOF(m, action::Misbehaved) {
        KJ_ASSERT(m.message.size() > 0);
      }
      KJ_CASE_ONEOF(p, action::Prepare) {
        (void)p;
        jobs.push_back(Job(Job::Kind::prepare));
      }
      KJ_CASE_ONEOF(c, action::CheckChunk) {
        KJ_ASSERT(claimedAtLoad.count(c.chunk) == 1, "a check of a chunk never claimed");
        Job job(Job::Kind::check);
        job.check = c;
        jobs.push_back(kj::mv(job));
      }
      KJ_CASE_ONEOF(s, action::SaveProgress) {
        for (auto c = s.chunks.next(0); c != nullptr; c = s.chunks.next(KJ_ASSERT_NONNULL(c) + 1)) {
          auto chunk = KJ_ASSERT_NONNULL(c);
          KJ_ASSERT(verified.count(chunk) == 1 || claimedAtLoad.count(chunk) == 1,
                    "a save claims a chunk never verified", chunk);
        }
        Job job(Job::Kind::save);
        job.chunks = kj::mv(s.chunks);
        jobs.push_back(kj::mv(job));
      }
      KJ_CASE_ONEOF(s, action::StopWrites) {
        (void)s;
        stopWrites = true;
      }
      KJ_CASE_ONEOF(f, action::Finish) {
        (void)f;
        KJ_ASSERT(verified.size() == target().chunks.size(), "Finish before every chunk verified");
        jobs.push_back(Job(Job::Kind::finish));
      }
    }
  }

  void checkSource(SourceKey key) {
    auto it = sources.find(key);
    KJ_ASSERT(it != sources.end(), "a request to a source not present", key);
    KJ_ASSERT(!it->second.dropped, "a request to a dropped source", key);
    KJ_ASSERT(it->second.bad < limits.maxBadChunks, "a request to a struck-out source [CHK-8]");
  }

  void observe(DownloadEvent& e) {
    KJ_SWITCH_ONEOF(e) {
      KJ_CASE_ONEOF(b, event::BadChunk) {
        auto it = sources.find(b.source);
        KJ_ASSERT(it != sources.end() && b.count == it->second.bad, b.count);
      }
      KJ_CASE_ONEOF(d, event::SourceDropped) {
        auto it = sources.find(d.source);
        if (it != sources.end()) it->second.dropped = true;
      }
      KJ_CASE_ONEOF(g, event::AllPeersGone) {
        (void)g;
        KJ_ASSERT(!peersGone, "AllPeersGone twice");
        peersGone = true;
      }
      KJ_CASE_ONEOF(x, event::Ended) {
        KJ_ASSERT(!ended);
        ended = true;
        KJ_ASSERT(requests.empty(), "a request still outstanding at the end");
        KJ_ASSERT(core->outstanding() == 0);
        KJ_ASSERT(peersGone == (x.outcome == Outcome::allPeersGone));
        if (x.outcome == Outcome::finished) checkLibrary();
      }
      KJ_CASE_ONEOF(p, event::Progress) {
        KJ_ASSERT(p.bytesDone <= p.bytesTotal);
      }
      KJ_CASE_ONEOF(r, event::ManifestReady) {
        (void)r;
      }
    }
  }

  void checkLibrary() {
    auto& version = versionOf(target().digest);
    for (uint32_t f = 0; f < target().files.size(); ++f) {
      auto path = kj::str(libraryDir, "/item/", target().files[f].path);
      int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
      KJ_ASSERT(fd >= 0, "a finished file is missing", path);
      kj::AutoCloseFd owned(fd);
      auto bytes = kj::heapArray<kj::byte>(version.files[f].size() + 1);
      ssize_t n = pread(fd, bytes.begin(), bytes.size(), 0);
      KJ_ASSERT(
          n == ssize_t(version.files[f].size()) && bytes.slice(0, n) == version.files[f].asPtr(),
          "a finished file differs from the item", path);
    }
  }

  // --- the sources
  // --------------------------------------------------------------------------------

  void addSource(uint8_t param) {
    static const uint32_t kInFlight[4] = {1, 2, 4, 64};
    SourceKey key = nextKey++;
    auto& s = sources[key] =
        SourceModel{uint8_t((param >> 2) % 3 == 2 ? 1 : 0), kInFlight[param & 3]};
    if (param >= 12) s.version = 2;
    core->addSource(key, infoOf(key, s), now);
  }

  kj::Maybe<SourceKey> pickSource(uint8_t which) {
    if (sources.empty()) return nullptr;
    auto it = sources.begin();
    std::advance(it, which % sources.size());
    return it->first;
  }

  void removeSource(uint8_t which) {
    KJ_IF_MAYBE (key, pickSource(which)) {
      sources.erase(*key);
      core->removeSource(*key, now);
    }
  }

  void relist(uint8_t which) {
    KJ_IF_MAYBE (key, pickSource(which)) {
      auto& s = sources[*key];
      s.version = uint8_t((s.version + 1 + which / 64) % 3);
      core->addSource(*key, infoOf(*key, s), now);
    }
  }

  // How source `key` answers request `r`: `kind` 0-5 honestly, then each way of failing.
  void answer(uint8_t which, uint8_t kind) {
    if (requests.empty()) return;
    auto it = requests.begin();
    std::advance(it, which % requests.size());
    Ticket ticket = it->first;
    SentRequest r = it->second;
    requests.erase(it);
    over.insert(ticket);
    auto found = sources.find(r.source);
    if (found == sources.end()) {
      core->onRequestFailed(ticket, ErrorCode::UNAVAILABLE, 0, true, now);  // its session is gone
      return;
    }
    auto& s = found->second;
    if (r.manifest) return answerManifest(ticket, s, kind);
    // An honest source whose listing is not the target answers stale.
    bool current = s.version < 2 && versions[s.version].manifest.digest == target().digest;
    if (kind <= 5 && !current) kind = 11;
    auto& version = versionOf(target().digest);
    switch (kind) {
      case 6:    // flipped bytes
      case 8: {  // another chunk's bytes (or this one's, for a one-chunk item)
        auto bytes = kj::heapArray(version.bytes(r.file, r.offset, r.length));
        if (kind == 6) bytes[bytes.size() / 2] ^= 0x20;
        if (kind == 8) {
          auto& other = version.files[(r.file + 1) % version.files.size()];
          for (size_t i = 0; i < bytes.size() && i < other.size(); ++i)
            bytes[i] = other[i];
        }
        deliver(ticket, r, kj::mv(bytes));
        break;
      }
      case 7: {  // the wrong length [CHK-6]
        size_t length = r.length > 1 ? r.length - 1 : 2;
        if (core->onChunk(ticket, length, now) == nullptr) {
          ++s.bad;
        } else {
          KJ_FAIL_ASSERT("a chunk of the wrong length was accepted");
        }
        break;
      }
      case 9:
      case 10: {
        uint32_t retry = uint32_t(which % 4) * 150;
        s.notBefore = now + kj::max(retry * kj::MILLISECONDS, limits.minRetryAfter);
        core->onRequestFailed(ticket, kind == 9 ? ErrorCode::BUSY : ErrorCode::UNAVAILABLE, retry,
                              false, now);
        break;
      }
      case 11: core->onRequestFailed(ticket, ErrorCode::STALE, 0, false, now); break;
      case 12: core->onRequestFailed(ticket, ErrorCode::INTERNAL, 0, false, now); break;
      case 13: core->onRequestFailed(ticket, ErrorCode::INTERNAL, 0, true, now); break;
      case 14: core->onRequestFailed(ticket, ErrorCode::NOT_FOUND, 0, false, now); break;
      case 15: core->onRequestFailed(ticket, ErrorCode::CANCELLED, 0, false, now); break;
      default: deliver(ticket, r, kj::heapArray(version.bytes(r.file, r.offset, r.length)));
    }
  }

  void deliver(Ticket ticket, const SentRequest& r, kj::Array<kj::byte> bytes) {
    KJ_IF_MAYBE (w, core->onChunk(ticket, bytes.size(), now)) {
      KJ_ASSERT(w->chunk == r.chunk && w->file == r.file && w->offset == r.offset);
      KJ_ASSERT(writing.insert(w->chunk).second, "a chunk handed to the writer twice", w->chunk);
      KJ_ASSERT(verified.count(w->chunk) == 0, "a verified chunk handed to the writer");
      Job job(Job::Kind::write);
      job.where = *w;
      job.data = kj::mv(bytes);
      job.from = r.source;
      jobs.push_back(kj::mv(job));
    }
  }

  void answerManifest(Ticket ticket, SourceModel& s, uint8_t kind) {
    if (s.version == 2 && kind <= 9) kind = 12;  // it does not list the item: notFound
    if (kind <= 10) {
      // Honest (its own version), or (10) the other version's manifest.
      uint8_t v = s.version == 2 ? 0 : s.version;
      if (kind == 10) v = uint8_t(1 - v);
      auto pages = codec::manifestPages(1, versions[v].manifest, codec::kMinFrameBytes);
      for (size_t i = 0; i < pages.size(); ++i) {
        auto bytes = codec::encodeFrame(*pages[i]);
        auto decoded = codec::decodeFrame(bytes);
        auto& frame = decoded.get<codec::InboundFrame>();
        core->onManifestPage(ticket, frame.root().getManifest(), i + 1 == pages.size(), now);
      }
      return;
    }
    static const ErrorCode kCodes[5] = {ErrorCode::BUSY, ErrorCode::NOT_FOUND, ErrorCode::INTERNAL,
                                        ErrorCode::UNAVAILABLE, ErrorCode::SHUTTING_DOWN};
    core->onRequestFailed(ticket, kCodes[kind - 11], 0, kind == 13, now);
  }

  void late(uint8_t which) {
    if (over.empty()) return;
    auto it = over.begin();
    std::advance(it, which % over.size());
    KJ_ASSERT(core->onChunk(*it, kChunk, now) == nullptr, "an answer to a finished request used");
    core->onRequestFailed(*it, ErrorCode::INTERNAL, 0, false, now);
  }

  // --- the disk
  // -----------------------------------------------------------------------------------

  kj::Array<kj::byte> readBack(uint32_t file, uint64_t offset, uint32_t length) {
    auto& item = *KJ_ASSERT_NONNULL(partial);
    auto path = kj::str(item.itemDir(), '/', target().files[file].path);
    int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
    KJ_ASSERT(fd >= 0, path, strerror(errno));
    kj::AutoCloseFd owned(fd);
    auto bytes = kj::heapArray<kj::byte>(length);
    KJ_ASSERT(pread(fd, bytes.begin(), length, off_t(offset)) == ssize_t(length));
    return bytes;
  }

  Job takeJob(uint8_t which) {
    auto it = jobs.begin() + ptrdiff_t(which % jobs.size());
    Job job = kj::mv(*it);
    jobs.erase(it);
    return job;
  }

  void doWrite(Job& job) {
    auto& w = job.where;
    writing.erase(w.chunk);
    auto right = versionOf(target().digest).bytes(w.file, w.offset, uint32_t(job.data.size()));
    auto before = readBack(w.file, w.offset, uint32_t(job.data.size()));
    auto result = KJ_ASSERT_NONNULL(partial)->writeChunk(w, job.data);
    auto after = readBack(w.file, w.offset, uint32_t(job.data.size()));
    if (result.get<PartialItem::Verdict>() == PartialItem::Verdict::written) {
      KJ_ASSERT(job.data.asPtr() == right, "unverified bytes were written [CHK-7]");
      KJ_ASSERT(after.asPtr() == right);
      KJ_ASSERT(verified.insert(w.chunk).second, "a chunk written twice", w.chunk);
      core->onChunkWritten(w.chunk, now);
    } else {
      KJ_ASSERT(job.data.asPtr() != right, "right bytes refused");
      KJ_ASSERT(before == after, "a refused chunk changed the file [CHK-7]");
      auto s = sources.find(job.from);
      if (s != sources.end()) ++s->second.bad;
      core->onChunkCorrupt(w.chunk, now);
    }
  }

  void doCheck(const action::CheckChunk& c) {
    bool right = readBack(c.file, c.offset, c.length).asPtr() ==
                 versionOf(target().digest).bytes(c.file, c.offset, c.length);
    bool intact = KJ_ASSERT_NONNULL(partial)->checkChunk(c).get<bool>();
    KJ_ASSERT(intact == right, "a check disagrees with the bytes on disk [CHK-10]");
    if (intact) {
      KJ_ASSERT(verified.insert(c.chunk).second);
    }
    core->onChunkChecked(c.chunk, intact, now);
  }

  void doJob(uint8_t which) {
    if (jobs.empty()) return;
    Job job = takeJob(which);
    switch (job.kind) {
      case Job::Kind::write: doWrite(job); break;
      case Job::Kind::check: doCheck(job.check); break;
      case Job::Kind::save: {
        KJ_IF_MAYBE (f, KJ_ASSERT_NONNULL(partial)->saveProgress(job.chunks)) {
          core->onDiskFailed(f->message, now);
        } else {
          core->onSaved(now);
        }
        break;
      }
      case Job::Kind::prepare: {
        partial = nullptr;
        KJ_SWITCH_ONEOF(PartialItem::prepare(folders(), target())) {
          KJ_CASE_ONEOF(item, kj::Own<PartialItem>) {
            partial = kj::mv(item);
            core->onPrepared(now);
          }
          KJ_CASE_ONEOF(failure, DiskFailure) {
            core->onDiskFailed(failure.message, now);
          }
        }
        break;
      }
      case Job::Kind::finish: {
        auto done = KJ_ASSERT_NONNULL(partial)->complete();
        KJ_IF_MAYBE (f, done.tryGet<DiskFailure>()) {
          core->onDiskFailed(f->message, now);
        } else {
          core->onFinished(now);
        }
        break;
      }
    }
  }

  void failJob(uint8_t which) {
    if (jobs.empty()) return;
    Job job = takeJob(which);
    auto message = "injected: No space left on device"_kj;
    if (job.kind == Job::Kind::write) {
      writing.erase(job.where.chunk);
      core->onChunkFailed(job.where.chunk, message, now);
    } else if (job.kind == Job::Kind::check) {
      core->onChunkFailed(job.check.chunk, message, now);
    } else {
      core->onDiskFailed(message, now);
    }
  }

  // Only after StopWrites, only jobs that may be dropped.
  void dropJob(uint8_t which) {
    if (!stopWrites || jobs.empty()) return;
    auto& job = jobs[which % jobs.size()];
    if (job.kind != Job::Kind::write && job.kind != Job::Kind::check) return;
    Job taken = takeJob(which);
    uint64_t chunk = taken.kind == Job::Kind::write ? taken.where.chunk : taken.check.chunk;
    if (taken.kind == Job::Kind::write) writing.erase(chunk);
    core->onJobDropped(chunk, now);
  }

  void advance(uint8_t param) {
    static const kj::Duration kUnits[4] = {10 * kj::MILLISECONDS, 100 * kj::MILLISECONDS,
                                           1 * kj::SECONDS, 5 * kj::SECONDS};
    now += kUnits[param & 3] * (1 + (param >> 2));
    core->onTick(now);
  }

  // --- restarts and the end
  // -----------------------------------------------------------------------

  // Runs the disk and, if `answering`, honest answers until nothing is left to do.
  void settle(bool answering, size_t bound) {
    for (size_t step = 0; step < bound && !ended; ++step) {
      if (!jobs.empty()) {
        doJob(0);
      } else if (answering && !requests.empty()) {
        answer(0, 0);
      } else {
        advance(6);  // 1 s: retry-after, stalls, the no-peers grace
      }
      drain();
    }
  }

  void restart(bool flip) {
    if (restarts++ >= kMaxRestarts) return;
    core->shutdown(now);
    drain();
    settle(false, 2000);
    KJ_ASSERT(ended, "a shut-down download did not end");
    if (flip && core->hasManifest()) flipKeptByte();
    partial = nullptr;
    requests.clear();
    over.clear();
    jobs.clear();
    writing.clear();
    verified.clear();
    stopWrites = ended = peersGone = false;
    // A new download knows nothing of the old one's retry-afters ([ERR-5] binds one requester).
    // Nor of its drops, but for [CHK-8]'s strikes, which infoOf() hands over.
    for (auto& [key, source] : sources) {
      source.notBefore = now;
      source.dropped = false;
    }
    startCore();
  }

  // What a bad disk or a tamperer does between runs: one byte of a kept chunk changes.
  void flipKeptByte() {
    auto state = PartialItem::load(folders(), "item");
    KJ_IF_MAYBE (m, state.manifest) {
      KJ_IF_MAYBE (chunk, state.claimed.next(0)) {
        uint32_t file = 0;
        while (file + 1 < m->files.size() && m->firstChunk[file + 1] <= *chunk)
          ++file;
        auto path = kj::str(stateDir, "/partial/", codec::toHex(codec::sha256("item"_kj.asBytes())),
                            "/item/", m->files[file].path);
        int fd = open(path.cStr(), O_RDWR | O_CLOEXEC);
        if (fd < 0) return;
        kj::AutoCloseFd owned(fd);
        off_t at = off_t((*chunk - m->firstChunk[file]) * kChunk);
        kj::byte b;
        if (pread(fd, &b, 1, at) == 1) {
          b ^= 0x01;
          KJ_ASSERT(pwrite(fd, &b, 1, at) == 1);
        }
      }
    }
  }

  void finishUp() {
    settle(true, 20000);
    KJ_ASSERT(ended, "the download did not end with honest sources and a working disk");
  }
};

DownloadLimits limitsFor(uint8_t preset) {
  DownloadLimits l;
  l.maxBufferedBytes = (preset & 1) ? 3 * kChunk : 64 << 20;
  l.maxBufferedChunks = (preset & 2) ? 2 : 512;
  l.maxWindow = (preset & 4) ? 1 : 64;
  l.endgameCopies = 1 + (preset >> 3) % 3;
  l.maxChecksInFlight = (preset & 8) ? 1 : 8;
  l.maxBadChunks = 1 + (preset >> 4) % 5;
  l.peersGoneGrace = (preset & 32) ? 0 * kj::SECONDS : 2 * kj::SECONDS;
  l.stallTimeout = (preset & 16) ? 1 * kj::SECONDS : 5 * kj::SECONDS;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > kMaxInput) return 0;
  static fuzz::ScratchFolder scratch(scratchParent(), "shoal-fuzz-download-");
  Input in(data, size);
  uint8_t head = in.byte();
  kj::Vector<uint64_t> sizes;
  for (int f = 0; f <= (head & 3); ++f) {
    uint8_t b = in.byte();
    sizes.add(uint64_t(b % 6) * kChunk + (b / 6) % 3 * 1000);  // 0 to 5 chunks, some partial
  }
  Harness harness(scratch, sizes, limitsFor(head >> 2));
  harness.run(in);
  return 0;
}

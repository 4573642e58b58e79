// A virtual-time world for DownloadCore tests: an item with real content and manifest, sources
// that answer after a latency and at a bandwidth (or not at all, or with errors or lies), a writer
// that verifies like the real one, and a log of everything the core asked for. No threads, no
// clock: `now` advances only when the test says so.
#pragma once

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/map.h>
#include <kj/vector.h>
#include <shoal/codec/frame.h>
#include <shoal/peer/download/download-core.h>

#include <string.h>

#include <map>

namespace shoal::peer::download::test {

using kj::MILLISECONDS;
using kj::SECONDS;

inline bool contains(kj::StringPtr text, kj::StringPtr part) {
  return strstr(text.cStr(), part.cStr()) != nullptr;
}

inline PeerId peerId(uint8_t b) {
  PeerId id;
  for (auto& x : id.bytes)
    x = b;
  return id;
}

// Deterministic content: byte i of file f.
inline kj::Array<kj::byte> contentOf(uint32_t file, uint64_t size) {
  auto bytes = kj::heapArray<kj::byte>(size);
  for (uint64_t i = 0; i < size; ++i)
    bytes[i] = kj::byte((i * 31 + file * 7 + i / 4096) & 0xff);
  return bytes;
}

// An item of files with the given sizes (4 KiB chunks unless told otherwise).
struct TestItem {
  codec::Manifest manifest;
  kj::Array<kj::Array<kj::byte>> files;

  explicit TestItem(kj::ArrayPtr<const uint64_t> sizes, uint32_t chunkSize = 4096,
                    kj::StringPtr itemId = "item") {
    kj::Vector<codec::FileInfo> infos;
    kj::Vector<codec::Digest> digests;
    auto builder = kj::heapArrayBuilder<kj::Array<kj::byte>>(sizes.size());
    for (uint32_t f = 0; f < sizes.size(); ++f) {
      infos.add(codec::FileInfo{kj::str("file-", kj::hex(0x100 + f)), sizes[f], 0644});
      auto content = contentOf(f, sizes[f]);
      for (uint64_t off = 0; off < sizes[f]; off += chunkSize) {
        digests.add(codec::sha256(content.slice(off, kj::min(off + chunkSize, sizes[f]))));
      }
      builder.add(kj::mv(content));
    }
    manifest = codec::makeManifest(kj::str(itemId), chunkSize, infos.releaseAsArray(),
                                   digests.releaseAsArray());
    files = builder.finish();
  }

  kj::ArrayPtr<const kj::byte> chunkBytes(uint32_t file, uint64_t offset, uint32_t length) const {
    return files[file].slice(offset, offset + length);
  }
  uint64_t chunkCount() const { return manifest.chunks.size(); }
};

// The manifest as the decoded frames a session would deliver.
inline kj::Array<codec::InboundFrame> manifestFrames(const codec::Manifest& manifest,
                                                     uint32_t maxFrameBytes = 16 << 20) {
  auto pages = codec::manifestPages(1, manifest, maxFrameBytes);
  auto out = kj::heapArrayBuilder<codec::InboundFrame>(pages.size());
  for (auto& page : pages) {
    auto bytes = codec::encodeFrame(*page);
    auto decoded = codec::decodeFrame(bytes);
    out.add(kj::mv(decoded.get<codec::InboundFrame>()));
  }
  return out.finish();
}

struct SentChunk : action::GetChunk {
  kj::TimePoint sentAt;
};

// What a simulated source does with the requests it gets.
struct SourceBehaviour {
  double bytesPerSecond = 100e6;
  kj::Duration latency = 1 * MILLISECONDS;
  bool silent = false;   // never answers (a stall)
  bool corrupt = false;  // answers every chunk with flipped bytes
};

class CoreHarness {
 public:
  explicit CoreHarness(kj::ArrayPtr<const uint64_t> sizes, DownloadLimits limits = {},
                       uint32_t chunkSize = 4096)
      : item(sizes, chunkSize),
        now(kj::origin<kj::TimePoint>() + 1000 * SECONDS),
        core("item", limits, codec::Limits(), now) {
    writes = kj::heapArray<uint32_t>(item.chunkCount());
    for (auto& w : writes)
      w = 0;
  }

  TestItem item;
  kj::TimePoint now;
  DownloadCore core;

  // Everything the core asked for, in order.
  kj::Vector<Ticket> manifestRequests;
  kj::Vector<SourceKey> manifestSources;
  std::map<Ticket, SentChunk> inFlight;  // GetChunk not answered or cancelled yet
  kj::Vector<SentChunk> sent;
  kj::Vector<Ticket> cancelled;
  kj::Vector<kj::String> misbehaved;
  uint32_t prepares = 0;
  kj::Vector<uint64_t> checks;
  kj::Vector<ChunkSet> saves;
  uint32_t stopWrites = 0;
  uint32_t finishes = 0;
  kj::Vector<DownloadEvent> events;
  kj::Array<uint32_t> writes;            // per chunk: verified writes
  kj::Vector<ChunkWrite> pendingWrites;  // handed to the writer, not reported yet
  std::map<SourceKey, uint64_t> bytesFrom;
  std::map<SourceKey, SourceBehaviour> behaviour;

  // Runs the core's output through the log.
  void drain() {
    for (auto& a : core.takeActions()) {
      KJ_SWITCH_ONEOF(a) {
        KJ_CASE_ONEOF(m, action::GetManifest) {
          manifestRequests.add(m.ticket);
          manifestSources.add(m.source);
        }
        KJ_CASE_ONEOF(c, action::GetChunk) {
          SentChunk s{c, now};
          inFlight.insert_or_assign(c.ticket, s);
          sent.add(s);
        }
        KJ_CASE_ONEOF(c, action::Cancel) {
          cancelled.add(c.ticket);
          inFlight.erase(c.ticket);
        }
        KJ_CASE_ONEOF(m, action::Misbehaved) {
          misbehaved.add(kj::mv(m.message));
        }
        KJ_CASE_ONEOF(p, action::Prepare) {
          (void)p;
          ++prepares;
        }
        KJ_CASE_ONEOF(c, action::CheckChunk) {
          uint64_t k = c.chunk - item.manifest.firstChunk[c.file];
          KJ_ASSERT(c.offset == k * item.manifest.chunkSize);
          KJ_ASSERT(c.length == item.manifest.chunkLength(c.file, k));
          checks.add(c.chunk);
        }
        KJ_CASE_ONEOF(s, action::SaveProgress) {
          saves.add(kj::mv(s.chunks));
        }
        KJ_CASE_ONEOF(s, action::StopWrites) {
          (void)s;
          ++stopWrites;
        }
        KJ_CASE_ONEOF(f, action::Finish) {
          (void)f;
          ++finishes;
        }
      }
    }
    for (auto& e : core.takeEvents())
      events.add(kj::mv(e));
  }

  SourceInfo info(uint8_t peer, uint32_t maxInFlight = 64) const {
    return SourceInfo{peerId(peer), maxInFlight, codec::kMaxChunkSize, item.manifest.digest,
                      nullptr};
  }

  void addSource(SourceKey key, uint32_t maxInFlight = 64) {
    core.addSource(key, info(uint8_t(key), maxInFlight), now);
    drain();
  }

  // Fresh start, manifest fetched from whoever was asked, partial files prepared.
  void startDownloading() {
    core.onLoaded(nullptr, ChunkSet(), now);
    drain();
    KJ_ASSERT(manifestRequests.size() > 0, "no GetManifest sent");
    deliverManifest(manifestRequests.back());
    KJ_ASSERT(prepares > 0);
    core.onPrepared(now);
    drain();
  }

  void deliverManifest(Ticket ticket) {
    auto frames = manifestFrames(item.manifest);
    for (auto i : kj::indices(frames)) {
      core.onManifestPage(ticket, frames[i].root().getManifest(), i + 1 == frames.size(), now);
    }
    drain();
  }

  // The source answers `ticket` with the right bytes (or `corrupt` ones); the writer verifies at
  // once unless `holdWrites`.
  kj::Maybe<ChunkWrite> answer(Ticket ticket, bool corrupt = false, bool holdWrite = false) {
    auto it = inFlight.find(ticket);
    KJ_ASSERT(it != inFlight.end(), "answering a request not in flight", ticket);
    auto s = it->second;
    inFlight.erase(it);
    auto result = core.onChunk(ticket, s.length, now);
    drain();
    KJ_IF_MAYBE (w, result) {
      KJ_ASSERT(w->chunk == s.chunk && w->file == s.file && w->offset == s.offset);
      bytesFrom[s.source] += s.length;
      if (holdWrite) {
        pendingWrites.add(*w);
      } else {
        completeWrite(*w, corrupt);
      }
    }
    return result;
  }

  // The writer's verdict: like ChunkWriter, it hashes before writing.
  void completeWrite(ChunkWrite w, bool corrupt = false) {
    if (corrupt) {
      core.onChunkCorrupt(w.chunk, now);
    } else {
      ++writes[w.chunk];
      core.onChunkWritten(w.chunk, now);
    }
    drain();
  }

  void fail(Ticket ticket, wire::ErrorCode code, uint32_t retryAfterMs = 0, bool local = false) {
    inFlight.erase(ticket);
    core.onRequestFailed(ticket, code, retryAfterMs, local, now);
    drain();
  }

  void advance(kj::Duration d) {
    now += d;
    core.onTick(now);
    drain();
  }

  kj::Vector<SentChunk> inFlightAt(SourceKey key) const {
    kj::Vector<SentChunk> out;
    for (auto& [t, s] : inFlight) {
      if (s.source == key) out.add(s);
    }
    return out;
  }

  // Answers everything in flight, oldest first, until the core asks for nothing more.
  void answerAll(size_t limit = 100000) {
    while (!inFlight.empty() && limit-- > 0)
      answer(inFlight.begin()->first);
  }

  void finish() {
    KJ_ASSERT(finishes == 1, finishes);
    core.onFinished(now);
    drain();
  }

  template <typename T>
  size_t count() const {
    size_t n = 0;
    for (auto& e : events) {
      if (e.is<T>()) ++n;
    }
    return n;
  }

  kj::Maybe<const event::Ended&> ended() const {
    for (auto& e : events) {
      if (e.is<event::Ended>()) return e.get<event::Ended>();
    }
    return nullptr;
  }

  // --- a network in virtual time ----------------------------------------------------------------
  // Each source serves its requests one after the other at its bandwidth; an answer arrives one
  // latency after it was served. Runs until the download ends or `limit` passes.
  std::map<Ticket, kj::TimePoint> due;
  std::map<SourceKey, kj::TimePoint> linkFree;

  void simulate(kj::Duration limit, kj::Duration tick = 10 * MILLISECONDS) {
    auto until = now + limit;
    auto nextTick = now + tick;
    while (!core.isEnded() && now < until) {
      // Schedule what was sent since.
      for (auto& [t, s] : inFlight) {
        if (due.count(t)) continue;
        auto& b = behaviour[s.source];
        if (b.silent) {
          due.insert_or_assign(t, kj::TimePoint(kj::maxValue));
          continue;
        }
        auto free = linkFree.find(s.source);
        auto start = free == linkFree.end() ? now : kj::max(now, free->second);
        auto serve = int64_t(double(s.length) / b.bytesPerSecond * 1e9) * kj::NANOSECONDS;
        linkFree.insert_or_assign(s.source, start + serve);
        due.insert_or_assign(t, start + serve + b.latency);
      }
      // The next thing to happen: an answer or a tick.
      kj::Maybe<Ticket> first;
      kj::TimePoint at = kj::min(nextTick, until);
      for (auto& [t, when] : due) {
        if (inFlight.count(t) && when < at) {
          at = when;
          first = t;
        }
      }
      now = at;
      KJ_IF_MAYBE (t, first) {
        due.erase(*t);
        bool bad = behaviour[inFlight.at(*t).source].corrupt;
        answer(*t, bad);
      } else if (now >= nextTick) {
        nextTick = now + tick;
        core.onTick(now);
        drain();
      }
      if (finishes > 0 && !core.isEnded()) finish();
      for (auto it = due.begin(); it != due.end();) {
        it = inFlight.count(it->first) ? std::next(it) : due.erase(it);
      }
    }
  }
};

}  // namespace shoal::peer::download::test

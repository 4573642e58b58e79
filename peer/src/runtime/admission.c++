#include <shoal/peer/runtime/admission.h>

#include <kj/debug.h>

namespace shoal::peer {

kj::Maybe<kj::String> AdmissionLimits::check() const {
  if (maxPending == 0) return kj::str("maxPending must be at least 1");
  if (maxPendingPerSource == 0) return kj::str("maxPendingPerSource must be at least 1");
  if (firstBytesTimeout <= 0 * kj::SECONDS) return kj::str("firstBytesTimeout must be positive");
  return nullptr;
}

kj::StringPtr name(Progress progress) {
  switch (progress) {
    case Progress::connected: return "connected";
    case Progress::receiving: return "receiving";
    case Progress::answered: return "answered";
    case Progress::secured: return "secured";
  }
  KJ_UNREACHABLE;
}

Admission::Admission(AdmissionLimits limits) : config(limits) {
  KJ_IF_MAYBE (problem, config.check()) {
    KJ_FAIL_REQUIRE("bad admission limits", *problem);
  }
}

kj::Maybe<Admission::Eviction> Admission::admit(uint64_t id, kj::StringPtr source,
                                                kj::TimePoint now, Progress progress) {
  KJ_ASSERT(entries.find(id) == nullptr, "connection admitted twice", id);
  kj::Maybe<Eviction> eviction;
  auto& from = sources.findOrCreate(source, [&]() {
    return decltype(sources)::Entry{kj::str(source), Source{nextSource++, 0}};
  });
  kj::Maybe<uint64_t> victim;
  Cause cause = Cause::allFull;
  if (from.pending >= config.maxPendingPerSource) {
    victim = leastProgressedOf(from.index);
    cause = Cause::sourceFull;
  } else if (entries.size() >= config.maxPending) {
    for (auto& first : byRank) {
      victim = first.key.id;
      break;
    }
  }
  auto sourceIndex = from.index;
  KJ_IF_MAYBE (v, victim) {
    auto& entry = KJ_ASSERT_NONNULL(entries.find(*v));
    eviction = Eviction{*v, cause, entry.progress};
    release(*v);  // may forget the newcomer's Source when it was its last connection: re-find
  }
  auto& owner = sources.findOrCreate(source, [&]() {
    return decltype(sources)::Entry{kj::str(source), Source{sourceIndex, 0}};
  });
  ++owner.pending;
  entries.insert(id, Entry{kj::str(source), owner.index, progress, now});
  byRank.insert(Rank{progress, id}, true);
  bySource.insert(SourceRank{owner.index, Rank{progress, id}}, true);
  return eviction;
}

void Admission::advance(uint64_t id, Progress progress) {
  KJ_IF_MAYBE (entry, entries.find(id)) {
    if (progress <= entry->progress) return;
    byRank.erase(Rank{entry->progress, id});
    bySource.erase(SourceRank{entry->sourceIndex, Rank{entry->progress, id}});
    entry->progress = progress;
    byRank.insert(Rank{progress, id}, true);
    bySource.insert(SourceRank{entry->sourceIndex, Rank{progress, id}}, true);
  }
}

void Admission::release(uint64_t id) {
  KJ_IF_MAYBE (entry, entries.find(id)) {
    byRank.erase(Rank{entry->progress, id});
    bySource.erase(SourceRank{entry->sourceIndex, Rank{entry->progress, id}});
    auto& source = KJ_ASSERT_NONNULL(sources.find(entry->source));
    if (--source.pending == 0) sources.erase(entry->source);
    entries.erase(id);
  }
}

kj::Maybe<uint64_t> Admission::leastProgressedOf(uint64_t sourceIndex) const {
  for (auto& entry : bySource.range(SourceRank{sourceIndex, Rank{Progress::connected, 0}},
                                    SourceRank{sourceIndex + 1, Rank{Progress::connected, 0}})) {
    return entry.key.rank.id;
  }
  return nullptr;
}

kj::Maybe<kj::TimePoint> Admission::nextDeadline() const {
  // Connections still `connected` lead the rank order, oldest first.
  for (auto& entry : byRank) {
    if (entry.key.progress != Progress::connected) break;
    return KJ_ASSERT_NONNULL(entries.find(entry.key.id)).acceptedAt + config.firstBytesTimeout;
  }
  return nullptr;
}

kj::Vector<uint64_t> Admission::expire(kj::TimePoint now) {
  kj::Vector<uint64_t> expired;
  for (auto& entry : byRank) {
    if (entry.key.progress != Progress::connected) break;
    auto& pending = KJ_ASSERT_NONNULL(entries.find(entry.key.id));
    if (pending.acceptedAt + config.firstBytesTimeout > now) break;
    expired.add(entry.key.id);
  }
  for (auto id : expired)
    release(id);
  return expired;
}

size_t Admission::pendingFrom(kj::StringPtr source) const {
  KJ_IF_MAYBE (s, sources.find(source)) {
    return s->pending;
  }
  return 0;
}

}  // namespace shoal::peer

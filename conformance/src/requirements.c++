#include <shoal/conformance/requirements.h>

#include <kj/map.h>
#include <kj/vector.h>

namespace shoal::conformance {

namespace {

bool word(kj::StringPtr text, size_t at, kj::StringPtr w) {
  if (!text.slice(at).startsWith(w)) return false;
  auto boundary = [](char c) {
    return !(c >= 'A' && c <= 'Z');
  };
  bool before = at == 0 || boundary(text[at - 1]);
  bool after = at + w.size() >= text.size() || boundary(text[at + w.size()]);
  return before && after;
}

bool says(kj::StringPtr text, kj::StringPtr keyword) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (word(text, i, keyword)) return true;
  }
  return false;
}

// Collapses the line breaks and indentation of a markdown bullet into single spaces.
kj::String flatten(kj::ArrayPtr<const char> text) {
  kj::Vector<char> out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == ' ') {
      space = true;
      continue;
    }
    if (space && out.size() > 0) out.add(' ');
    space = false;
    out.add(c);
  }
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

kj::Array<kj::String> linesOf(kj::StringPtr text) {
  kj::Vector<kj::String> lines;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '\n') {
      lines.add(kj::str(text.slice(start, i)));
      start = i + 1;
    }
  }
  return lines.releaseAsArray();
}

}  // namespace

kj::Array<Requirement> parseRequirements(kj::StringPtr doc) {
  kj::Vector<Requirement> out;
  static constexpr kj::StringPtr marker = "**["_kj;
  size_t i = 0;
  while (i < doc.size()) {
    // A requirement starts a line or a bullet: "- **[HS-3]**" or "**[HS-3]**".
    size_t lineStart = i;
    size_t at = i;
    if (doc.slice(at).startsWith("- ")) at += 2;
    if (doc.slice(at).startsWith(marker)) {
      auto rest = doc.slice(at + marker.size());
      KJ_IF_MAYBE (close, rest.findFirst(']')) {
        auto id = kj::str(rest.slice(0, *close));
        size_t bodyStart = at + marker.size() + *close + 3;  // past "]**"
        // The body runs to a blank line or the next bullet at column 0.
        size_t end = bodyStart;
        while (end < doc.size()) {
          if (doc[end] == '\n' && end + 1 < doc.size() &&
              (doc[end + 1] == '\n' || doc.slice(end + 1).startsWith("- ") ||
               doc.slice(end + 1).startsWith("#"))) {
            break;
          }
          ++end;
        }
        auto text = flatten(doc.slice(bodyStart, end));
        kj::Maybe<Level> level;
        if (says(text, "MUST")) {
          level = Level::must;
        } else if (says(text, "SHOULD")) {
          level = Level::should;
        }
        out.add(Requirement{kj::mv(id), kj::mv(text), level});
        i = end;
        continue;
      }
    }
    // Next line.
    KJ_IF_MAYBE (nl, doc.slice(lineStart).findFirst('\n')) {
      i = lineStart + *nl + 1;
    } else {
      break;
    }
  }
  return out.releaseAsArray();
}

kj::ArrayPtr<const Requirement> requirements() {
  static const kj::Array<Requirement> parsed = parseRequirements(protocolDocument());
  return parsed;
}

kj::Maybe<const Requirement&> findRequirement(kj::StringPtr id) {
  for (auto& r : requirements()) {
    if (r.id == id) return r;
  }
  return nullptr;
}

kj::Array<kj::String> coverageProblems(kj::ArrayPtr<const CaseSpec> cases, kj::StringPtr awaiting) {
  kj::Vector<kj::String> problems;
  kj::HashMap<kj::String, uint32_t> covered;
  for (auto& c : cases) {
    if (c.requirement == "-") continue;  // sanity cases
    if (findRequirement(c.requirement) == nullptr) {
      problems.add(kj::str("case ", c.id, " cites ", c.requirement,
                           ", which docs/protocol.md does not define"));
    }
    covered.upsert(kj::str(c.requirement), 1, [](uint32_t& n, uint32_t) { ++n; });
  }
  // awaiting.txt: "ID  reason" per line; '#' starts a comment.
  kj::HashMap<kj::String, bool> awaited;
  for (auto& text : linesOf(awaiting)) {
    if (text.size() == 0 || text.startsWith("#")) continue;
    size_t end = 0;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t')
      ++end;
    auto id = kj::str(text.slice(0, end));
    if (findRequirement(id) == nullptr) {
      problems.add(kj::str("awaiting.txt lists ", id, ", which docs/protocol.md does not define"));
    } else if (covered.find(id) != nullptr) {
      problems.add(kj::str("awaiting.txt lists ", id, ", which now has a case: remove the line"));
    }
    if (text.slice(end).size() < 10) {
      problems.add(kj::str("awaiting.txt: ", id, " needs a reason"));
    }
    awaited.insert(kj::mv(id), true);
  }
  for (auto& r : requirements()) {
    if (r.level != Level::must) continue;
    if (covered.find(r.id) == nullptr && awaited.find(r.id) == nullptr) {
      problems.add(kj::str(r.id, " is a MUST without a case (and not in awaiting.txt)"));
    }
  }
  return problems.releaseAsArray();
}

}  // namespace shoal::conformance

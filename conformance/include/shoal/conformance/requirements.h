// The requirements of docs/protocol.md, read from the copy built into the binary: every
// `**[AREA-n]**` bullet or paragraph with its text and level (MUST if it says MUST, else SHOULD,
// else MAY). Cases quote this text; the coverage check compares it with the case list.
#pragma once

#include <kj/array.h>
#include <kj/string.h>
#include <shoal/conformance/case.h>

namespace shoal::conformance {

struct Requirement {
  kj::String id;           // "HS-3"
  kj::String text;         // the requirement as written, without its id marker
  kj::Maybe<Level> level;  // null: MAY only
};

kj::Array<Requirement> parseRequirements(kj::StringPtr doc);

// docs/protocol.md as it was when the binary was built.
kj::StringPtr protocolDocument();

// Parsed once per process; safe from any thread.
kj::ArrayPtr<const Requirement> requirements();
kj::Maybe<const Requirement&> findRequirement(kj::StringPtr id);

// One line per problem: MUST ids without a case (unless awaited), awaited ids that have cases or
// are unknown, cases citing unknown ids. `awaiting` is the text of conformance/awaiting.txt.
kj::Array<kj::String> coverageProblems(kj::ArrayPtr<const CaseSpec> cases, kj::StringPtr awaiting);

}  // namespace shoal::conformance

// Path rules for file paths inside an item and for item ids (docs/protocol.md "Paths", MAN-4..).
// Paths are checked, never normalised: anything that is not already canonical is rejected.
#pragma once

#include <stdint.h>

#include <kj/common.h>
#include <kj/string.h>
#include <shoal/codec/limits.h>

namespace shoal::codec {

enum class PathError : uint8_t {
  empty,             // "" (a path, or an item id)
  tooLong,           // more than Limits::maxPathBytes
  tooDeep,           // more than Limits::maxPathDepth components
  nul,               // a NUL byte anywhere
  badUtf8,           // not strict UTF-8
  controlChar,       // C0, DEL or C1 control character
  backslash,         // '\' anywhere: a separator elsewhere, so never allowed
  absolute,          // begins with '/'
  emptyComponent,    // "a//b", trailing "/"
  dotComponent,      // "." component
  dotDotComponent,   // ".." component
  componentTooLong,  // a component above Limits::maxComponentBytes
  separator,         // an item id holding '/': ids are one component
};

kj::StringPtr name(PathError error);

// A relative, '/'-separated path of one or more components.
kj::Maybe<PathError> checkPath(kj::ArrayPtr<const char> path, const Limits& limits);

// A single component (an item id, or one folder name).
kj::Maybe<PathError> checkComponent(kj::ArrayPtr<const char> component, const Limits& limits);

// For kj::str() and KJ_LOG.
inline kj::StringPtr KJ_STRINGIFY(PathError e) {
  return name(e);
}

}  // namespace shoal::codec

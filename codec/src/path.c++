#include <shoal/codec/path.h>

#include <shoal/codec/text.h>

namespace shoal::codec {

kj::StringPtr name(PathError error) {
  switch (error) {
    case PathError::empty: return "empty";
    case PathError::tooLong: return "tooLong";
    case PathError::tooDeep: return "tooDeep";
    case PathError::nul: return "nul";
    case PathError::badUtf8: return "badUtf8";
    case PathError::controlChar: return "controlChar";
    case PathError::backslash: return "backslash";
    case PathError::absolute: return "absolute";
    case PathError::emptyComponent: return "emptyComponent";
    case PathError::dotComponent: return "dotComponent";
    case PathError::dotDotComponent: return "dotDotComponent";
    case PathError::componentTooLong: return "componentTooLong";
    case PathError::separator: return "separator";
  }
  return "unknown";
}

namespace {

// Byte-level rules every path and component shares, in a fixed order so that one input always
// yields the same error.
kj::Maybe<PathError> checkBytes(kj::ArrayPtr<const char> text) {
  for (char c : text) {
    if (c == '\0') return PathError::nul;
  }
  if (!isValidUtf8(text)) return PathError::badUtf8;
  for (size_t i = 0; i < text.size(); ++i) {
    if (isControlAt(text, i)) return PathError::controlChar;
    if (text[i] == '\\') return PathError::backslash;
  }
  return nullptr;
}

kj::Maybe<PathError> checkOneComponent(kj::ArrayPtr<const char> c, const Limits& limits) {
  if (c.size() == 0) return PathError::emptyComponent;
  if (c.size() == 1 && c[0] == '.') return PathError::dotComponent;
  if (c.size() == 2 && c[0] == '.' && c[1] == '.') return PathError::dotDotComponent;
  if (c.size() > limits.maxComponentBytes) return PathError::componentTooLong;
  return nullptr;
}

}  // namespace

kj::Maybe<PathError> checkPath(kj::ArrayPtr<const char> path, const Limits& limits) {
  if (path.size() == 0) return PathError::empty;
  if (path.size() > limits.maxPathBytes) return PathError::tooLong;
  KJ_IF_MAYBE (e, checkBytes(path)) {
    return *e;
  }
  if (path[0] == '/') return PathError::absolute;

  uint32_t depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      KJ_IF_MAYBE (e, checkOneComponent(path.slice(start, i), limits)) {
        return *e;
      }
      if (++depth > limits.maxPathDepth) return PathError::tooDeep;
      start = i + 1;
    }
  }
  return nullptr;
}

kj::Maybe<PathError> checkComponent(kj::ArrayPtr<const char> component, const Limits& limits) {
  if (component.size() == 0) return PathError::empty;
  KJ_IF_MAYBE (e, checkBytes(component)) {
    return *e;
  }
  for (char c : component) {
    if (c == '/') return PathError::separator;
  }
  return checkOneComponent(component, limits);
}

}  // namespace shoal::codec

#include <shoal/codec/error.h>

namespace shoal::codec {

kj::StringPtr name(CodecError error) {
  switch (error) {
    case CodecError::truncated: return "truncated";
    case CodecError::segmentCount: return "segmentCount";
    case CodecError::frameTooLarge: return "frameTooLarge";
    case CodecError::malformed: return "malformed";
    case CodecError::unknownMessage: return "unknownMessage";
    case CodecError::badField: return "badField";
    case CodecError::badText: return "badText";
    case CodecError::badPath: return "badPath";
    case CodecError::badDigest: return "badDigest";
    case CodecError::badCount: return "badCount";
    case CodecError::badRange: return "badRange";
  }
  return "unknown";
}

wire::ErrorCode toWireCode(CodecError error) {
  switch (error) {
    case CodecError::frameTooLarge: return wire::ErrorCode::TOO_LARGE;
    case CodecError::badRange: return wire::ErrorCode::RANGE;
    default: return wire::ErrorCode::PROTOCOL;
  }
}

Failure fail(CodecError error, kj::String message) {
  return Failure{error, kj::mv(message)};
}

}  // namespace shoal::codec

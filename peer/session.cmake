# session: SessionCore (sans-I/O protocol state machine) and Session (its KJ driver).
add_library(shoal-session STATIC
  src/session/session-core.c++
  src/session/session.c++
)
target_include_directories(shoal-session PUBLIC include)
target_link_libraries(shoal-session PUBLIC shoal-codec shoal-transport CapnProto::kj-async)

shoal_test(session-core-test unit
  SOURCES test/session/session-core-test.c++
  LIBS shoal-session)

shoal_test(session-test unit
  SOURCES test/session/session-test.c++
  LIBS shoal-session)

# Appendix A of docs/protocol.md, recorded from two Sessions and compared with the document.
shoal_test(transcript-test unit
  SOURCES test/session/transcript-test.c++
  LIBS shoal-runtime CapnProto::capnpc)
target_compile_definitions(transcript-test PRIVATE SHOAL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

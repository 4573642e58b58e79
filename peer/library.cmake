# library: the peer's library index — scan, index cache, revisions, deltas, paging, remote views,
# and opening files beneath the library root. See src/library/README.md.

# The index cache's schema, generated to ${PROJECT_BINARY_DIR}/gen/shoal/peer/library/. A function
# keeps the CAPNPC_* settings out of the directory scope the other fragments share.
function(shoal_library_schema out)
  set(CAPNPC_SRC_PREFIX ${CMAKE_CURRENT_SOURCE_DIR}/src)
  set(CAPNPC_OUTPUT_DIR ${PROJECT_BINARY_DIR}/gen/shoal/peer)
  file(MAKE_DIRECTORY ${CAPNPC_OUTPUT_DIR}/library)
  capnp_generate_cpp(srcs hdrs src/library/index-cache.capnp)
  set(${out} ${srcs} PARENT_SCOPE)
endfunction()
shoal_library_schema(LIBRARY_CAPNP_SRCS)

add_library(shoal-library STATIC
  src/library/beneath.c++
  src/library/index-cache.c++
  src/library/item.c++
  src/library/library.c++
  src/library/library-sync.c++
  src/library/library-view.c++
  src/library/scanner.c++
  src/library/state-file.c++
  ${LIBRARY_CAPNP_SRCS}
)
target_include_directories(shoal-library PUBLIC include)
target_include_directories(shoal-library SYSTEM PRIVATE ${PROJECT_BINARY_DIR}/gen)
target_link_libraries(shoal-library PUBLIC shoal-mutant shoal-codec CapnProto::capnp CapnProto::kj)

shoal_test(library-test unit
  SOURCES
    test/library/beneath-test.c++
    test/library/scanner-test.c++
    test/library/library-test.c++
    test/library/library-sync-test.c++
    test/library/library-view-test.c++
    test/library/item-test.c++
    test/library/state-file-test.c++
  LIBS shoal-library)

# download: DownloadCore (sans-I/O scheduler), PartialItem (the partial folder on disk), ChunkWriter
# (verify + write off the event loop) and Download (the KJ driver). Below runtime: it depends on
# session, library and codec only. See src/download/README.md.
add_library(shoal-download STATIC
  src/download/chunk-set.c++
  src/download/source-window.c++
  src/download/download-core.c++
  src/download/download-scheduler.c++
  src/download/partial-item.c++
  src/download/chunk-writer.c++
  src/download/download.c++
)
target_include_directories(shoal-download PUBLIC include)
target_link_libraries(shoal-download PUBLIC shoal-session shoal-library shoal-codec CapnProto::kj-async)

shoal_test(download-core-test unit
  SOURCES
    test/download/chunk-set-test.c++
    test/download/source-window-test.c++
    test/download/download-core-test.c++
  LIBS shoal-download)

shoal_test(download-disk-test unit
  SOURCES
    test/download/partial-item-test.c++
    test/download/chunk-writer-test.c++
  LIBS shoal-download)

shoal_test(download-test unit
  SOURCES test/download/download-test.c++
  LIBS shoal-download)

# The driver turn by turn: windows, a source lost mid-chunk, writer jobs per turn and dropped,
# cancel during a write, all peers gone.
shoal_test(download-driver-test unit
  SOURCES test/download/download-driver-test.c++
  LIBS shoal-download)

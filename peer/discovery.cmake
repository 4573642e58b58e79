# discovery: the LAN beacon (Beacon and PeerCandidates, sans-I/O; BeaconSocket, UDP multicast),
# mDNS / DNS-SD through Avahi (MdnsAgent), and Discovery, the driver the runtime runs as a
# service. See src/discovery/README.md.
pkg_check_modules(AVAHI REQUIRED IMPORTED_TARGET avahi-client)

add_library(shoal-discovery STATIC
  src/discovery/announce.c++
  src/discovery/beacon.c++
  src/discovery/beacon-socket.c++
  src/discovery/candidates.c++
  src/discovery/discovery.c++
  src/discovery/interfaces.c++
  src/discovery/mdns.c++
  src/discovery/source-limiter.c++
)
target_include_directories(shoal-discovery PUBLIC include)
target_link_libraries(shoal-discovery PUBLIC shoal-codec shoal-transport CapnProto::kj-async
  PRIVATE PkgConfig::AVAHI)

shoal_test(discovery-test unit
  SOURCES
    test/discovery/announce-test.c++
    test/discovery/beacon-test.c++
    test/discovery/candidates-test.c++
    test/discovery/interfaces-test.c++
    test/discovery/source-limiter-test.c++
  LIBS shoal-discovery)
target_compile_definitions(discovery-test PRIVATE SHOAL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

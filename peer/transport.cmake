# transport: identity and peer ids, the Transport abstraction (plaintext), TLS 1.3 with raw
# public keys over any kj::AsyncIoStream (GnuTLS). See src/transport/README.md.
add_library(shoal-transport STATIC
  src/transport/identity.c++
  src/transport/client-hello.c++
  src/transport/tls.c++
  src/transport/transport.c++
)
target_include_directories(shoal-transport PUBLIC include)
target_link_libraries(shoal-transport PUBLIC shoal-mutant shoal-codec CapnProto::kj-async PkgConfig::GNUTLS)

shoal_test(transport-test unit
  SOURCES
    test/transport/peer-id-test.c++
    test/transport/identity-test.c++
    test/transport/tls-test.c++
    test/transport/client-hello-test.c++
    test/transport/plaintext-test.c++
  LIBS shoal-transport)
